/**
 * Every refusal and failure écluse reports carries a stable code from this list and a one-line message an operator
 * can act on. The codes are a public contract (CLI output, `--json`, the audit log, docs/FORMAT.md): add codes, never
 * rename or reuse one. Each code declares its category (refused / usage / failure / nothing to do) beside it: the
 * category alone decides the exit status.
 */
export const ERROR_CODES = {
  // verification of a bundle (import station)
  E_FORMAT: { category: 'refused', meaning: 'the media or the statement is not a well-formed écluse bundle' },
  E_SIGNATURE: { category: 'refused', meaning: 'a signature does not verify over the statement' },
  E_UNTRUSTED_SIGNER: { category: 'refused', meaning: 'a signature was made by a key the site does not trust' },
  E_THRESHOLD: { category: 'refused', meaning: 'fewer distinct trusted signers than the site requires' },
  E_DIGEST: { category: 'refused', meaning: 'a volume or artifact does not match the digest in the signed statement' },
  E_SIZE: { category: 'refused', meaning: 'a volume or artifact does not have the size given in the signed statement' },
  E_REPLAY: { category: 'refused', meaning: 'the bundle, or a later one from the same station, was already imported' },
  E_SEQUENCE_GAP: {
    category: 'refused',
    meaning:
      "`order: strict`: a bundle between the last imported one and this one is missing; either order: a late bundle's successor is not accepted yet",
  },
  E_CHAIN: {
    category: 'refused',
    meaning:
      'the bundle does not chain to the accepted state: it does not name its accepted predecessor, or (late) is not the predecessor its accepted successor named',
  },
  E_WRONG_SITE: { category: 'refused', meaning: 'the bundle was made for another site' },
  E_EXPIRED: { category: 'refused', meaning: 'the statement has expired' },
  E_NOT_YET_VALID: { category: 'refused', meaning: 'the statement was created in the future' },
  E_MISSING_VOLUME: { category: 'refused', meaning: 'a volume named in the statement is not on the media' },
  E_NOT_ALLOWED: { category: 'refused', meaning: 'the site policy does not admit an artifact' },
  E_ROLLBACK: { category: 'refused', meaning: 'an artifact is not newer than the version installed' },
  E_REVOKED: { category: 'refused', meaning: 'a signature was made by a revoked key' },
  E_UNEXPECTED_FILE: { category: 'refused', meaning: 'the bundle folder holds a file the statement does not name' },
  E_NO_BUNDLE: { category: 'refused', meaning: 'no écluse bundle was found on the media' },
  E_TOO_MANY_BUNDLES: { category: 'refused', meaning: 'more than one bundle was found where one was expected' },
  E_DELTA_BASE: {
    category: 'refused',
    meaning: 'an image travels as a delta against a base image the import station does not hold',
  },
  // OCI images (4.9)
  E_IMAGE_MANIFEST: {
    category: 'refused',
    meaning:
      'an OCI image manifest, index or config is malformed, over a bound, of an unknown media type, or disagrees with the blobs and platforms the statement lists',
  },
  E_IMAGE_BLOB_MISSING: {
    category: 'refused',
    meaning:
      'an OCI image needs a blob that is neither carried by the bundle nor held by the station (a manifest names a blob not listed, or a listed blob not carried is not held)',
  },
  // écluse's own package (4.10)
  E_UPDATE: {
    category: 'refused',
    meaning:
      "écluse's own package was not installed: it could not be handed over to the installer, the root's own check or the installer refused it, or its daemon did not report ready and the previous package was reinstalled",
  },
  // media handling (import station daemon)
  E_MEDIA_REFUSED: {
    category: 'refused',
    meaning: 'the media is mounted writable, with unsafe options, or with a filesystem that is not accepted',
  },
  E_MEDIA_REMOVED: {
    category: 'failure',
    meaning: 'the media was removed while it was being read; nothing was promoted',
  },
  // the audit log (import station)
  E_AUDIT_TAMPERED: {
    category: 'refused',
    meaning: 'an audit event does not hash to the leaf logged for it, or the log differs from a signed checkpoint',
  },
  E_AUDIT_MISSING: {
    category: 'refused',
    meaning: 'an audit event or leaf that was logged is missing (deleted or truncated)',
  },
  E_AUDIT_ORDER: { category: 'refused', meaning: 'audit events are not in the order they were logged' },
  E_AUDIT_CHECKPOINT: {
    category: 'refused',
    meaning: 'a checkpoint of the audit log is not signed by the audit key, or is malformed',
  },
  E_AUDIT_CONSISTENCY: {
    category: 'refused',
    meaning: 'an audit export is not an append-only extension of the previous checkpoint',
  },
  // the web view
  E_AUTH: { category: 'refused', meaning: 'a login is required, or the login failed' },
  E_RATE_LIMITED: { category: 'refused', meaning: 'too many failed logins; wait before trying again' },
  // local state and operator input
  E_NOT_INITIALIZED: { category: 'failure', meaning: 'the station has not been set up' },
  E_ALREADY_INITIALIZED: { category: 'failure', meaning: 'the station is already set up' },
  E_USAGE: { category: 'usage', meaning: 'the command was called wrongly' },
  E_INPUT: { category: 'failure', meaning: 'an input file or value is invalid' },
  E_NOT_FOUND: { category: 'failure', meaning: 'the named thing does not exist' },
  E_NOTHING_TO_EXPORT: { category: 'nothingToDo', meaning: 'there is nothing new to export' },
  E_PASSPHRASE: { category: 'failure', meaning: 'a private key could not be unlocked' },
  E_KEY: { category: 'failure', meaning: 'a key or certificate is unusable' },
  E_IO: { category: 'failure', meaning: 'reading or writing a file failed' },
  E_DATABASE: {
    category: 'failure',
    meaning: "the station's database (ecluse.sqlite) is damaged, not a database, or cannot be opened",
  },
  E_ADDRESS_IN_USE: { category: 'failure', meaning: 'the address to listen on is already taken by another program' },
  E_STORE: { category: 'refused', meaning: 'the image store and its catalog disagree' },
  E_IMAGE_IN_USE: {
    category: 'refused',
    meaning: 'an image cannot be retired: it is protected, or the export station may still send a delta against it',
  },
  E_TARGET: {
    category: 'failure',
    meaning: "pushing an image into the site's own Glance or container registry (a target) failed",
  },
  E_KEYSTONE: {
    category: 'failure',
    meaning:
      "the site's Keystone (token validation for the Glance API) is unreachable or refuses the station's service user",
  },
  // vendor feeds and vendor evidence (export station fetch; import station re-check)
  E_VENDOR_SIGNATURE: {
    category: 'refused',
    meaning:
      "a vendor's signature (OpenPGP over a checksum file, a Sigstore bundle, a Glance image signature) does not verify",
  },
  E_VENDOR_DIGEST: { category: 'refused', meaning: 'an artifact does not match the digest its vendor published' },
  E_VENDOR_UNTRUSTED: {
    category: 'refused',
    meaning: 'an artifact is signed by a key not pinned for its vendor, or carries no vendor evidence',
  },
  E_FEED: { category: 'failure', meaning: 'a vendor feed could not be read (network, HTTP status, missing file)' },
  // import receipts (the way back out)
  E_RECEIPT: {
    category: 'refused',
    meaning:
      'an import receipt is not signed by the pinned receipt key, is for another site, or is older than one taken',
  },
  E_UNACKNOWLEDGED: {
    category: 'refused',
    meaning: 'the import station has not acknowledged the last bundle (no receipt names it yet)',
  },
  E_NO_SPACE: {
    category: 'failure',
    meaning: 'a disk (the store, the media, a staging folder) has no room for what must be written',
  },
  E_INTERRUPTED: {
    category: 'failure',
    meaning: 'the work was interrupted (Ctrl-C, SIGTERM); nothing half-done was kept',
  },
  E_INTERNAL: { category: 'failure', meaning: 'an internal error (a bug: please report it)' },
} as const satisfies Record<string, { category: ErrorCategory; meaning: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Process exit codes, one per category: 0 success, 1 a refusal (a check failed), 2 bad usage, 3 a local/operational
 * failure, 4 nothing to do (nothing failed; a script may treat it as success).
 */
export const EXIT = { ok: 0, refused: 1, usage: 2, failure: 3, nothingToDo: 4 } as const;

/** What kind of outcome a code is; it alone decides the exit status. */
export type ErrorCategory = 'refused' | 'usage' | 'failure' | 'nothingToDo';

export function categoryOf(code: ErrorCode): ErrorCategory {
  return ERROR_CODES[code].category;
}

export function meaningOf(code: ErrorCode): string {
  return ERROR_CODES[code].meaning;
}

export function exitCodeFor(code: ErrorCode): number {
  return EXIT[categoryOf(code)];
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
  // Wraps a non-Error throw (a string, an object) so that it keeps a stack; it leaves here as E_INTERNAL.
  // eslint-disable-next-line no-restricted-syntax
  const err = e instanceof Error ? e : new Error(String(e));
  const errno = (err as NodeJS.ErrnoException).code;
  // A full disk is something the operator can fix, wherever it happens (a write, a rename, SQLite's journal).
  if (errno === 'ENOSPC' || errno === 'EDQUOT' || errno === 'SQLITE_FULL') {
    const message = `the disk is full (${err.message}): make room, then try again`;
    return new EcluseError('E_NO_SPACE', message, {}, { cause: err });
  }
  if (typeof errno === 'string' && /^E[A-Z]+$/.test(errno) && 'syscall' in err) {
    return new EcluseError('E_IO', err.message, {}, { cause: err });
  }
  return new EcluseError('E_INTERNAL', err.message, {}, { cause: err });
}
