/**
 * Every refusal and failure écluse reports carries a stable code from this list and a one-line message an operator
 * can act on. The codes are a public contract (CLI output, `--json`, the audit log, docs/FORMAT.md): add codes, never
 * rename or reuse one.
 */
export const ERROR_CODES = {
  // verification of a bundle (import station)
  E_FORMAT: 'the media or the statement is not a well-formed écluse bundle',
  E_SIGNATURE: 'a signature does not verify over the statement',
  E_UNTRUSTED_SIGNER: 'a signature was made by a key the site does not trust',
  E_THRESHOLD: 'fewer distinct trusted signers than the site requires',
  E_DIGEST: 'a volume or artifact does not match the digest in the signed statement',
  E_SIZE: 'a volume or artifact does not have the size given in the signed statement',
  E_REPLAY: 'the bundle, or a later one from the same station, was already imported',
  E_SEQUENCE_GAP: 'a bundle between the last imported one and this one is missing',
  E_CHAIN: 'the bundle does not name the last imported bundle as its predecessor',
  E_WRONG_SITE: 'the bundle was made for another site',
  E_EXPIRED: 'the statement has expired',
  E_NOT_YET_VALID: 'the statement was created in the future',
  E_MISSING_VOLUME: 'a volume named in the statement is not on the media',
  E_NOT_ALLOWED: 'the site policy does not admit an artifact',
  E_ROLLBACK: 'an artifact is not newer than the version installed',
  E_REVOKED: 'a signature was made by a revoked key',
  E_UNEXPECTED_FILE: 'the bundle folder holds a file the statement does not name',
  E_NO_BUNDLE: 'no écluse bundle was found on the media',
  E_TOO_MANY_BUNDLES: 'more than one bundle was found where one was expected',
  E_DELTA_BASE: 'an image travels as a delta against a base image the import station does not hold',
  // media handling (import station daemon)
  E_MEDIA_REFUSED: 'the media is mounted writable, with unsafe options, or with a filesystem that is not accepted',
  E_MEDIA_REMOVED: 'the media was removed while it was being read; nothing was promoted',
  // the audit log (import station)
  E_AUDIT_TAMPERED:
    'an audit event does not hash to the leaf logged for it, or the log differs from a signed checkpoint',
  E_AUDIT_MISSING: 'an audit event or leaf that was logged is missing (deleted or truncated)',
  E_AUDIT_ORDER: 'audit events are not in the order they were logged',
  E_AUDIT_CHECKPOINT: 'a checkpoint of the audit log is not signed by the audit key, or is malformed',
  E_AUDIT_CONSISTENCY: 'an audit export is not an append-only extension of the previous checkpoint',
  // the web view
  E_AUTH: 'a login is required, or the login failed',
  E_RATE_LIMITED: 'too many failed logins; wait before trying again',
  // local state and operator input
  E_NOT_INITIALIZED: 'the station has not been set up',
  E_ALREADY_INITIALIZED: 'the station is already set up',
  E_USAGE: 'the command was called wrongly',
  E_INPUT: 'an input file or value is invalid',
  E_NOT_FOUND: 'the named thing does not exist',
  E_NOTHING_TO_EXPORT: 'there is nothing new to export',
  E_PASSPHRASE: 'a private key could not be unlocked',
  E_KEY: 'a key or certificate is unusable',
  E_IO: 'reading or writing a file failed',
  E_STORE: 'the image store and its catalog disagree',
  E_TARGET: "pushing an image into the site's own Glance (a target) failed",
  // vendor feeds and vendor evidence (export station fetch; import station re-check)
  E_VENDOR_SIGNATURE:
    "a vendor's signature (OpenPGP over a checksum file, a Sigstore bundle, a Glance image signature) does not verify",
  E_VENDOR_DIGEST: 'an artifact does not match the digest its vendor published',
  E_VENDOR_UNTRUSTED: 'an artifact is signed by a key not pinned for its vendor, or carries no vendor evidence',
  E_FEED: 'a vendor feed could not be read (network, HTTP status, missing file)',
  // import receipts (the way back out)
  E_RECEIPT:
    'an import receipt is not signed by the pinned receipt key, is for another site, or is older than one taken',
  E_UNACKNOWLEDGED: 'the import station has not acknowledged the last bundle (no receipt names it yet)',
  E_INTERNAL: 'an internal error (a bug: please report it)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Process exit codes: 0 success, 1 a refusal (a check failed), 2 bad usage, 3 a local/operational failure. */
export const EXIT = { ok: 0, refused: 1, usage: 2, failure: 3 } as const;

const OPERATIONAL: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'E_NOT_INITIALIZED',
  'E_ALREADY_INITIALIZED',
  'E_NOT_FOUND',
  'E_NOTHING_TO_EXPORT',
  'E_PASSPHRASE',
  'E_KEY',
  'E_IO',
  'E_INTERNAL',
  'E_INPUT',
  'E_TARGET',
  'E_FEED',
  'E_MEDIA_REMOVED',
]);

export function exitCodeFor(code: ErrorCode): number {
  if (code === 'E_USAGE') return EXIT.usage;
  return OPERATIONAL.has(code) ? EXIT.failure : EXIT.refused;
}

export interface ErrorContext {
  /** The check that failed, e.g. `volume-digest`, `signature`, `sequence`. */
  check?: string;
  bundleId?: string;
  artifact?: string;
  volume?: string;
  [key: string]: unknown;
}

/** The one error type écluse throws on purpose. `message` is the operator-readable line, without the code. */
export class EcluseError extends Error {
  readonly code: ErrorCode;
  readonly context: ErrorContext;

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EcluseError';
    this.code = code;
    this.context = context;
  }

  /** `E_DIGEST: volume vol-0002.tar does not match ...` — the line printed to operators and journals. */
  line(): string {
    return `${this.code}: ${this.message}`;
  }
}

export function isEcluseError(e: unknown): e is EcluseError {
  return e instanceof EcluseError;
}

/** Wraps anything thrown into an EcluseError, keeping codes already assigned. */
export function asEcluseError(e: unknown): EcluseError {
  if (e instanceof EcluseError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const errno = (err as NodeJS.ErrnoException).code;
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno) && 'syscall' in err) {
    return new EcluseError('E_IO', err.message, {}, { cause: err });
  }
  return new EcluseError('E_INTERNAL', err.message, {}, { cause: err });
}
