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
import { highWater, type DeltaBaseUse } from './accepted-state.js';
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
  /** The delta bases its statement names, once the statement was read (retirement keeps them: a resend needs them). */
  deltaBases?: DeltaBaseUse[];
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
  /** The delta bases the refused statement names (empty when it was not read, or has none). */
  deltaBases: DeltaBaseUse[];
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The bundle an error is about: what was verified, else what the error's context names. */
export function refusedBundle(err: EcluseError, known: Partial<RefusedBundle> = {}): RefusedBundle {
  return {
    bundleId: known.bundleId ?? text(err.context.bundleId),
    station: known.station ?? text(err.context.station),
    sequence: known.sequence ?? (typeof err.context.sequence === 'number' ? err.context.sequence : null),
    ...(known.deltaBases ? { deltaBases: known.deltaBases } : {}),
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
    deltaBases: bundle.deltaBases ?? [],
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

/** What a recovery is decided from: the refusal's code and its failed check (an error, or a logged refusal). */
export interface RefusalKind {
  code: string | null;
  check: string | null;
}

/** The station a recovery names: its catalog (for the chains' high-water marks) and its site id. */
export type RefusalSite = Pick<Site, 'db' | 'siteId'>;

/** Bytes damaged, lost or added on the way: the very same bundle, written again, passes. */
function damagedOnTheWay(r: RefusalKind): boolean {
  switch (r.code) {
    case 'E_DIGEST':
    case 'E_MISSING_VOLUME':
    case 'E_UNEXPECTED_FILE':
    case 'E_SIGNATURE':
      return true;
    case 'E_SIZE':
      return r.check === 'volume-size'; // the file on the media is not the size signed (7c)
    case 'E_FORMAT':
      return r.check === 'media-file'; // a link or a device where a volume belongs (7b)
    default:
      return false;
  }
}

/** Too few trusted signers: the same statement, signed again by enough of them, passes. */
const RESIGN: ReadonlySet<string> = new Set<ErrorCode>(['E_THRESHOLD', 'E_UNTRUSTED_SIGNER', 'E_REVOKED']);

/** The bundle cannot pass as it is (time, policy, content): the export station makes another. */
const REPLACE: ReadonlySet<string> = new Set<ErrorCode>([
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

/**
 * What to do about a refusal that needs nothing from the export station (or that needs a decision here first): one
 * clause each, the wording the CLI's recovery and the web view's "What to do" share.
 */
const HERE: Partial<Record<ErrorCode, string>> = {
  E_REPLAY: 'nothing: this bundle, or a later one from its station, was already imported',
  E_WRONG_SITE: 'this bundle was made for another site: return the media to the export station',
  E_SEQUENCE_GAP: 'import the earlier bundle first (strict order), or its successor first (a late bundle)',
  E_CHAIN:
    'this is not the bundle its accepted successor named: do not trust this media; ask the export station which bundle it wrote',
  E_NOT_YET_VALID: "check this station's clock (the bundle says it was made in the future), then import again",
  E_MEDIA_REFUSED: 'remount the media read-only with the options the message names, or use a stick the site accepts',
  E_NO_BUNDLE: 'this media carries no écluse bundle: check that it is the right stick',
  E_TOO_MANY_BUNDLES: 'name the bundle to import with --bundle PREFIX',
  E_NO_SPACE: 'free space in the store, then import again',
  E_MEDIA_REMOVED: 'insert the media again and let the import finish',
  E_INTERRUPTED: 'run the import again',
};

/** The last resort of the web view's "What to do". */
const READ_THE_REASON = 'read the reason, fix what it names, and import again';

/** `ecluse export --resend N --site S --to MEDIA`: the one spelling of the command that writes a bundle again. */
export function resendCommand(siteId: string, sequence: number | string): string {
  return `ecluse export --resend ${sequence} --site ${siteId} --to MEDIA`;
}

/** Before the statement is verified its sequence is not known for certain: the command says where to read it. */
const UNKNOWN_N = ' (N: the bundle\'s sequence, shown by "ecluse inspect MEDIA")';

/** The recovery that needs the export station, as one clause naming the exact command; null when none does. */
export function recoveryFor(site: RefusalSite, r: RefusalKind, b: RefusedBundle): string | null {
  const to = `--site ${site.siteId} --to MEDIA`;
  const n = b.sequence === null ? 'N' : String(b.sequence);
  const unknown = b.sequence === null ? UNKNOWN_N : '';
  if (r.code === 'E_SEQUENCE_GAP') {
    if (!b.station || b.sequence === null) return null;
    const h = highWater(site.db, b.station)?.sequence ?? 0;
    if (b.sequence > h + 1) {
      return `import bundle ${h + 1} first, or export it again outside: ${resendCommand(site.siteId, h + 1)}`;
    }
    return null; // a late bundle: importing its successor is the next step, already named
  }
  if (damagedOnTheWay(r)) return `export it again outside: ${resendCommand(site.siteId, n)}${unknown}`;
  if (r.code !== null && RESIGN.has(r.code)) {
    return `sign it again outside with enough trusted signers: ${resendCommand(site.siteId, n)} --signer DIR --signer DIR${unknown}`;
  }
  const malformed = (r.code === 'E_SIZE' || r.code === 'E_FORMAT') && b.sequence !== null;
  if ((r.code !== null && REPLACE.has(r.code)) || malformed) {
    const h = b.station ? (highWater(site.db, b.station)?.sequence ?? 0) : 0;
    // Below the high-water mark, a replacement would not chain: what it carried travels in the next export.
    if (b.sequence !== null && b.sequence < h)
      return `what it carries goes in the next export outside: ecluse export ${to}`;
    return `export a replacement outside: ecluse export --replace ${n} ${to}${unknown}`;
  }
  return null;
}

/**
 * The operator's next step after a refusal, in one clause: the export station's command when one is needed, else what
 * to do here. The one source of this advice: the CLI's refusal lines end with `recoveryFor`, the web view's "What to
 * do" says this.
 */
export function nextStepFor(site: RefusalSite, r: RefusalKind, b: RefusedBundle): string {
  return recoveryFor(site, r, b) ?? (r.code ? HERE[r.code as ErrorCode] : undefined) ?? READ_THE_REASON;
}

/** Ends the error's line with its recovery (once). */
export function withRecovery(site: RefusalSite, err: EcluseError, b: RefusedBundle): EcluseError {
  const check = typeof err.context.check === 'string' ? err.context.check : null;
  const recovery = recoveryFor(site, { code: err.code, check }, b);
  if (recovery && !err.message.includes(recovery)) err.message = `${err.message}; ${recovery}`;
  return err;
}
