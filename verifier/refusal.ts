/**
 * A refused import, written one way wherever it is found (CLI import, daemon): the checks that passed, the one that
 * failed (with its FORMAT.md section 6 step), and one `import.refused` event whose `details` always have the same
 * shape (`RefusalDetails`): the receipt (`refused[]`, `gaps[]`) and the gap messages read it back.
 *
 * `withRecovery` ends a refusal's line with what the operator does next when that needs the export station: the exact
 * command (`ecluse export --resend N` for bytes damaged or lost on the way, `--replace N` for a bundle that cannot
 * pass as it is).
 */
import type { EcluseError, ErrorCode } from '../sneakernet/errors.js';
import { highWater } from './accepted-state.js';
import { appendAudit } from './audit.js';
import { failedCheck, type CheckRecord, type StepId } from './checks.js';
import { activePolicy } from './policy/store.js';
import type { RefusedArtifact } from './policy/admission.js';
import type { Site } from './site.js';

/** What the refused bundle is known to be (null fields: the statement was not verified that far). */
export interface RefusedBundle {
  bundleId: string | null;
  station: string | null;
  sequence: number | null;
}

/** The `details` of every `import.refused` audit event. */
export interface RefusalDetails {
  check: string;
  step: StepId | null;
  sequence: number | null;
  volume: string | null;
  /** E_NOT_ALLOWED / E_ROLLBACK: every artifact refused, with the rule. */
  artifacts: RefusedArtifact[];
  policyDigest: string;
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The bundle an error is about: what was verified, else what the error's context names. */
export function refusedBundle(err: EcluseError, known: Partial<RefusedBundle> = {}): RefusedBundle {
  return {
    bundleId: known.bundleId ?? text(err.context.bundleId),
    station: known.station ?? text(err.context.station),
    sequence: known.sequence ?? (typeof err.context.sequence === 'number' ? err.context.sequence : null),
  };
}

function refusedArtifacts(err: EcluseError): RefusedArtifact[] {
  const a = err.context.artifacts;
  return Array.isArray(a) ? (a as RefusedArtifact[]) : [];
}

/** Audits a refusal: the checks that passed, the failed check, and the one `import.refused` event. */
export function recordRefusal(
  site: Site,
  err: EcluseError,
  bundle: RefusedBundle,
  media: string,
  passedChecks: readonly CheckRecord[] = [],
): void {
  const failed = failedCheck(err.context);
  const where = { bundleId: bundle.bundleId, station: bundle.station, media };
  const details: RefusalDetails = {
    check: failed.check,
    step: failed.step,
    sequence: bundle.sequence,
    volume: text(err.context.volume),
    artifacts: refusedArtifacts(err),
    policyDigest: activePolicy(site.db).digest,
  };
  site.db.transaction(() => {
    for (const c of passedChecks) {
      appendAudit(site.db, { kind: `check.${c.check}`, outcome: 'pass', message: c.detail, ...where });
    }
    appendAudit(site.db, {
      kind: `check.${failed.check}`,
      outcome: 'fail',
      code: err.code,
      message: err.message,
      ...where,
    });
    appendAudit(site.db, {
      kind: 'import.refused',
      outcome: 'refused',
      code: err.code,
      message: err.line(),
      ...where,
      artifact:
        details.artifacts.length === 1 ? `${details.artifacts[0]?.name}@${details.artifacts[0]?.version}` : null,
      details: { ...details },
    });
  })();
}

/** Bytes damaged or lost on the way: the very same bundle, written again, passes. */
const RESEND: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_DIGEST',
  'E_SIZE',
  'E_MISSING_VOLUME',
  'E_UNEXPECTED_FILE',
  'E_FORMAT',
]);
/** The bundle cannot pass as it is (time, policy, signers, content): the export station makes another. */
const REPLACE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_EXPIRED',
  'E_NOT_ALLOWED',
  'E_ROLLBACK',
  'E_DELTA_BASE',
  'E_THRESHOLD',
  'E_UNTRUSTED_SIGNER',
  'E_REVOKED',
  'E_VENDOR_SIGNATURE',
  'E_VENDOR_DIGEST',
  'E_VENDOR_UNTRUSTED',
]);

/** The recovery that needs the export station, as one clause naming the exact command; null when none does. */
export function recoveryFor(site: Site, err: EcluseError, b: RefusedBundle): string | null {
  const to = `--site ${site.siteId} --to MEDIA`;
  if (err.code === 'E_SEQUENCE_GAP' && b.station && b.sequence !== null) {
    const h = highWater(site.db, b.station)?.sequence ?? 0;
    if (b.sequence > h + 1) {
      return `import bundle ${h + 1} first, or export it again outside: ecluse export --resend ${h + 1} ${to}`;
    }
    return null; // a late bundle: its successor's import is the next step, already named
  }
  if (b.sequence === null) {
    // The statement was not verified (signatures): its sequence is not known for certain.
    if (REPLACE.has(err.code)) {
      return `export a replacement outside: ecluse export --replace N ${to} (N: the bundle's sequence, shown by "ecluse inspect MEDIA")`;
    }
    return null;
  }
  if (RESEND.has(err.code)) return `export it again outside: ecluse export --resend ${b.sequence} ${to}`;
  if (REPLACE.has(err.code)) {
    const h = b.station ? (highWater(site.db, b.station)?.sequence ?? 0) : 0;
    // Below the high-water mark, a replacement would not chain: what it carried travels in the next export.
    if (b.sequence < h) return `what it carries goes in the next export outside: ecluse export ${to}`;
    return `export a replacement outside: ecluse export --replace ${b.sequence} ${to}`;
  }
  return null;
}

/** Ends the error's line with its recovery (once). */
export function withRecovery(site: Site, err: EcluseError, b: RefusedBundle): EcluseError {
  const recovery = recoveryFor(site, err, b);
  if (recovery && !err.message.includes(recovery)) err.message = `${err.message}; ${recovery}`;
  return err;
}
