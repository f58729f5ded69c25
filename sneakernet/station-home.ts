/**
 * A station's state folder (`--home`) and its SQLite file, as the operator is told about them when they cannot be
 * used: which folder or file, for which user, and what to do. Shared by the export station (relay/catalog.ts) and the
 * import station (verifier/db.ts): neither may import the other, and both must say it the same way. Never the bare
 * errno text (`EACCES: permission denied, mkdir '/var/lib/ecluse/blobs/sha256'`).
 */
import os from 'node:os';
import { EcluseError } from './errors.js';

function whoAmI(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** The EcluseError for a station home that cannot be created, read or written (`home`: the folder the operator gave). */
export function stationHomeError(home: string, e: unknown): EcluseError {
  if (e instanceof EcluseError) return e;
  const errno = (e as NodeJS.ErrnoException).code;
  const path = (e as NodeJS.ErrnoException).path ?? home;
  const context = { check: 'station-home', home, file: path };
  switch (errno) {
    case 'EACCES':
    case 'EPERM':
      return new EcluseError(
        'E_IO',
        `cannot use the station home ${home}: permission denied for user ${whoAmI()} on ${path}; run as the user that owns it, give that user write access to it, or choose another folder with --home`,
        context,
        { cause: e },
      );
    case 'EROFS':
      return new EcluseError(
        'E_IO',
        `cannot use the station home ${home}: ${path} is on a read-only filesystem; choose a writable folder with --home`,
        context,
        { cause: e },
      );
    case 'ENOTDIR':
    case 'EEXIST':
      return new EcluseError(
        'E_USAGE',
        `cannot use the station home ${home}: ${path} is a file where a folder belongs; give the station's state folder with --home`,
        context,
        { cause: e },
      );
    case 'ENOSPC':
    case 'EDQUOT':
      return new EcluseError(
        'E_NO_SPACE',
        `no room left to create the station home ${home}: free space on that disk`,
        context,
        {
          cause: e,
        },
      );
    default:
      return new EcluseError('E_IO', `cannot use the station home ${home}: ${(e as Error).message}`, context, {
        cause: e,
      });
  }
}

/**
 * The operator's error for a database that cannot be used: which file, what is wrong with it, and what to do.
 * SQLite's own words ("file is not a database") name neither.
 */
export function databaseError(file: string, e: unknown): EcluseError {
  if (e instanceof EcluseError) return e;
  const code = (e as { code?: unknown }).code;
  const sqlite = typeof code === 'string' ? code : '';
  const context = { check: 'database', file };
  if (sqlite === 'SQLITE_NOTADB' || sqlite.startsWith('SQLITE_CORRUPT'))
    return new EcluseError(
      'E_DATABASE',
      `${file} is damaged (${(e as Error).message}): stop the station, keep the file for analysis, and restore the home from its last backup`,
      context,
      { cause: e },
    );
  if (sqlite === 'SQLITE_FULL')
    return new EcluseError('E_NO_SPACE', `no room left to write ${file}: free space on that disk`, context, {
      cause: e,
    });
  if (sqlite === 'SQLITE_READONLY' || sqlite === 'SQLITE_CANTOPEN' || sqlite === 'SQLITE_PERM')
    return new EcluseError(
      'E_DATABASE',
      `cannot open ${file} (${(e as Error).message}) as user ${whoAmI()}: run as the user that owns it, or let that user read and write it and its folder`,
      context,
      { cause: e },
    );
  if (sqlite === 'SQLITE_BUSY' || sqlite === 'SQLITE_LOCKED')
    return new EcluseError('E_DATABASE', `${file} is locked by another program for too long: try again`, context, {
      cause: e,
    });
  if (sqlite.startsWith('SQLITE_'))
    return new EcluseError('E_DATABASE', `${file}: ${(e as Error).message}`, context, { cause: e });
  return new EcluseError('E_INTERNAL', (e as Error).message, context, { cause: e });
}
