/**
 * Room in the store, checked before a byte moves. An import stages every artifact in full (a delta artifact is staged
 * rebuilt) on the store's filesystem, then renames it into the store, so it needs the sum of the artifact sizes there,
 * plus a margin for the catalog and the audit log. The check runs once the statement's signatures have verified (its
 * sizes are the signed ones) and before the first volume is opened. Running out of space later anyway (another
 * writer filled the disk) is `E_NO_SPACE` too, with nothing half-written left behind.
 */
import fs from 'node:fs';
import { EcluseError } from '../sneakernet/errors.js';
import type { Statement } from '../sneakernet/statement.js';
import { formatBytes } from '../sneakernet/units.js';
import { passed, type CheckRecord } from './checks.js';

/** Kept free beyond the artifacts: what promotion adds to the catalog, the audit log and the SQLite journal. */
export const STORE_MARGIN_BYTES = 1024 * 1024;

export interface StoreRoom {
  /** Bytes the import needs in the store: the artifacts plus STORE_MARGIN_BYTES. */
  needed: number;
  artifacts: number;
  /** Bytes an unprivileged writer may still use on the store's filesystem. */
  free: number;
  dir: string;
}

/** Free bytes for an unprivileged writer on the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const s = await fs.promises.statfs(dir);
  return s.bavail * s.bsize;
}

/** How much room the bundle's artifacts need in the store, and how much there is. */
export async function storeRoom(statement: Statement, stagingDir: string): Promise<StoreRoom> {
  const artifacts = statement.predicate.artifacts.reduce((n, a) => n + a.size, 0);
  return { needed: artifacts + STORE_MARGIN_BYTES, artifacts, free: await freeBytes(stagingDir), dir: stagingDir };
}

/** Refuses (E_NO_SPACE) a bundle the store has no room for; otherwise the check's record for the audit and --json. */
export async function checkStoreRoom(statement: Statement, stagingDir: string): Promise<CheckRecord> {
  const room = await storeRoom(statement, stagingDir);
  if (room.needed > room.free) {
    throw new EcluseError(
      'E_NO_SPACE',
      `the bundle needs ${formatBytes(room.needed)}, the store has ${formatBytes(room.free)} free in ${room.dir} ` +
        `(the need counts ${formatBytes(STORE_MARGIN_BYTES)} for the catalog and the audit log): make room there ` +
        `(or move the station's home to a larger disk), then import again`,
      { check: 'space', needed: room.needed, free: room.free },
    );
  }
  return passed('space', `the bundle needs ${formatBytes(room.needed)}, the store has ${formatBytes(room.free)} free`);
}

/** True for "the disk is full" in any of its spellings: ENOSPC, EDQUOT (a quota), SQLite's SQLITE_FULL, a short write. */
export function isNoSpace(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL' || code === 'E_NO_SPACE';
}

/** The disk filled up while `what` (e.g. `staging img 1.0`): nothing was kept. */
export function noSpaceError(e: unknown, what: string, dir: string): EcluseError {
  return new EcluseError(
    'E_NO_SPACE',
    `the store ran out of space while ${what} (${dir}); nothing was kept: make room there, then import again`,
    { check: 'space' },
    { cause: e },
  );
}

/**
 * Writes the audit record of a failed import; when the disk is too full for that as well (another writer took the
 * room the removed staging gave back), the operator still gets the original error, told that it is not in the log.
 */
export function auditUnlessFull(err: EcluseError, write: () => void): EcluseError {
  try {
    write();
    return err;
  } catch (e) {
    if (!isNoSpace(e)) throw e;
    return new EcluseError(
      err.code,
      `${err.message} (this could not be written to the audit log: the disk is full)`,
      err.context,
      { cause: err.cause ?? e },
    );
  }
}
