/**
 * The checks of an import, one typed list tied to the steps of docs/FORMAT.md section 6: the name is what `--json`
 * (`checks[].check`) and the audit log (`check.<name>`) say, the step is where the format specifies it. A check that
 * passed is a `CheckRecord`; a check that failed is an `EcluseError` whose `context.check` is one of these names (or,
 * for errors raised below the verifier, a name the list maps to its step).
 */

export const IMPORT_CHECKS = {
  bundle: '1',
  layout: '2',
  'media-set': '2',
  revocations: '3r',
  revocation: '3r',
  'root-rotation': '3r',
  signatures: '3',
  'signature-format': '3b',
  signature: '3d',
  'signer-trust': '3e',
  threshold: '3e',
  statement: '4',
  'statement-schema': '4a',
  'statement-consistency': '4b',
  site: '5a',
  replay: '5b',
  sequence: '5d',
  chain: '5e',
  expiry: '5f',
  created: '5g',
  freshness: '5f',
  policy: '5h',
  rollback: '5i',
  'delta-base': '5j',
  'image-blobs': '5k',
  'image-blob-missing': '5k',
  volumes: '6',
  'volumes-present': '6b',
  space: '6c',
  'media-file': '7b',
  'volume-size': '7c',
  'volume-structure': '7d',
  'entry-size': '7e',
  'artifact-digest': '7h',
  'volume-digest': '7i',
  digests: '7',
  'image-contents': '7o',
  'image-blob-digest': '7o',
  'image-blob-size': '7o',
  'image-blob-list': '7o',
  'image-blob-count': '7o',
  'image-manifest': '7o',
  'image-config': '7o',
  'image-platforms': '7o',
  'vendor-evidence': '7v',
  'vendor-signature': '7v',
  'vendor-digest': '7v',
  'vendor-key': '7v',
  vendor: '7v',
  complete: '8',
  media: '1',
  // écluse's own package (FORMAT.md 4.10): handed over to the privileged installer as the bundle is accepted.
  'update-hand-over': '9',
} as const;

export type CheckName = keyof typeof IMPORT_CHECKS;
export type StepId = (typeof IMPORT_CHECKS)[CheckName];

/** A check that passed, as `--json` and the audit log report it. */
export interface CheckRecord {
  check: CheckName;
  /** The step of docs/FORMAT.md section 6. */
  step: StepId;
  outcome: 'pass';
  detail: string;
}

export function passed(check: CheckName, detail: string): CheckRecord {
  return { check, step: IMPORT_CHECKS[check], outcome: 'pass', detail };
}

export function isCheckName(name: unknown): name is CheckName {
  return typeof name === 'string' && Object.hasOwn(IMPORT_CHECKS, name);
}

/** The failed check an error names and its step (null for a check outside section 6; `import` when none is named). */
export function failedCheck(context: { check?: unknown }): { check: string; step: StepId | null } {
  const name = context.check;
  if (isCheckName(name)) return { check: name, step: IMPORT_CHECKS[name] };
  return { check: typeof name === 'string' ? name : 'import', step: null };
}
