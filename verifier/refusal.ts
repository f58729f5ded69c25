/**
 * A refused import, written one way wherever it is found (CLI import, daemon): the checks that passed, the one that
 * failed (with its FORMAT.md section 6 step), and one `import.refused` event whose `details` always have the same
 * shape (`RefusalDetails`): the receipt (`refused[]`, `gaps[]`) and the gap messages read it back.
 *
 * `withRecovery` ends a refusal's line with what the operator does next when that needs the export station: the exact
 * command: `ecluse export --resend N` for bytes damaged or lost on the way, and for too few trusted signers (the same
 * statement signed again, so bundles chained after it still match); `--replace N` for a bundle that cannot pass as it
 * is (expired, refused by policy or version order, a malformed signed volume).
 */
import type { EcluseError, ErrorCode } from '../sneakernet/errors.js';
import { subjectName } from '../sneakernet/subject.js';
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
      artifact: details.artifacts.length === 1 && details.artifacts[0] ? subjectName(details.artifacts[0]) : null,
      details: { ...details },
    });
  })();
}

/** Bytes damaged, lost or added on the way: the very same bundle, written again, passes. */
function damagedOnTheWay(err: EcluseError): boolean {
  switch (err.code) {
    case 'E_DIGEST':
    case 'E_MISSING_VOLUME':
    case 'E_UNEXPECTED_FILE':
    case 'E_SIGNATURE':
      return true;
    case 'E_SIZE':
      return err.context.check === 'volume-size'; // the file on the media is not the size signed (7c)
    case 'E_FORMAT':
      return err.context.check === 'media-file'; // a link or a device where a volume belongs (7b)
    default:
      return false;
  }
}

/** Too few trusted signers: the same statement, signed again by enough of them, passes. */
const RESIGN: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['E_THRESHOLD', 'E_UNTRUSTED_SIGNER', 'E_REVOKED']);

/** The bundle cannot pass as it is (time, policy, content): the export station makes another. */
const REPLACE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_EXPIRED',
  'E_NOT_ALLOWED',
  'E_ROLLBACK',
  'E_DELTA_BASE',
  'E_VENDOR_SIGNATURE',
  'E_VENDOR_DIGEST',
  'E_VENDOR_UNTRUSTED',
  'E_IMAGE_MANIFEST',
  'E_IMAGE_BLOB_MISSING',
]);

/** Before the statement is verified its sequence is not known for certain: the command says where to read it. */
const UNKNOWN_N = ' (N: the bundle\'s sequence, shown by "ecluse inspect MEDIA")';

/** The recovery that needs the export station, as one clause naming the exact command; null when none does. */
export function recoveryFor(site: Site, err: EcluseError, b: RefusedBundle): string | null {
  const to = `--site ${site.siteId} --to MEDIA`;
  const n = b.sequence === null ? 'N' : String(b.sequence);
  const unknown = b.sequence === null ? UNKNOWN_N : '';
  if (err.code === 'E_SEQUENCE_GAP') {
    if (!b.station || b.sequence === null) return null;
    const h = highWater(site.db, b.station)?.sequence ?? 0;
    if (b.sequence > h + 1) {
      return `import bundle ${h + 1} first, or export it again outside: ecluse export --resend ${h + 1} ${to}`;
    }
    return null; // a late bundle: importing its successor is the next step, already named
  }
  if (damagedOnTheWay(err)) return `export it again outside: ecluse export --resend ${n} ${to}${unknown}`;
  if (RESIGN.has(err.code)) {
    return `sign it again outside with enough trusted signers: ecluse export --resend ${n} ${to} --signer DIR --signer DIR${unknown}`;
  }
  const malformed = (err.code === 'E_SIZE' || err.code === 'E_FORMAT') && b.sequence !== null;
  if (REPLACE.has(err.code) || malformed) {
    const h = b.station ? (highWater(site.db, b.station)?.sequence ?? 0) : 0;
    // Below the high-water mark, a replacement would not chain: what it carried travels in the next export.
    if (b.sequence !== null && b.sequence < h)
      return `what it carries goes in the next export outside: ecluse export ${to}`;
    return `export a replacement outside: ecluse export --replace ${n} ${to}${unknown}`;
  }
  return null;
}

/** Ends the error's line with its recovery (once). */
export function withRecovery(site: Site, err: EcluseError, b: RefusedBundle): EcluseError {
  const recovery = recoveryFor(site, err, b);
  if (recovery && !err.message.includes(recovery)) err.message = `${err.message}; ${recovery}`;
  return err;
}
