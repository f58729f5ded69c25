/**
 * What an operator is told when a file they named cannot be read: a missing file is E_NOT_FOUND, a folder where a
 * file was wanted is E_USAGE, a permission problem is E_IO naming the user the command runs as. Never the bare
 * errno text (`EISDIR: illegal operation on a directory, read`).
 */
import fs from 'node:fs';
import os from 'node:os';
import { EcluseError } from './errors.js';
import { checkId } from './check-ids.js';

function whoAmI(): string {
  try {
    return os.userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/** The EcluseError for a failed open/stat/read of `file`, which the operator named as `what` (e.g. "the image"). */
export function unreadableFile(file: string, e: unknown, what = 'file'): EcluseError {
  if (e instanceof EcluseError) return e;
  const errno = (e as NodeJS.ErrnoException).code;
  const context = { check: checkId('input-file'), file };
  switch (errno) {
    case 'ENOENT':
      return new EcluseError('E_NOT_FOUND', `no such ${what}: ${file}; check the path`, context, { cause: e });
    case 'ENOTDIR':
      return new EcluseError('E_NOT_FOUND', `no such ${what}: ${file} (a part of the path is not a folder)`, context, {
        cause: e,
      });
    case 'EISDIR':
      return new EcluseError('E_USAGE', `${file} is a folder: give the ${what} itself`, context, { cause: e });
    case 'EACCES':
    case 'EPERM':
      return new EcluseError(
        'E_IO',
        `cannot read ${file}: permission denied for user ${whoAmI()}; make it readable to that user or run as its owner`,
        context,
        { cause: e },
      );
    default:
      return new EcluseError('E_IO', `cannot read ${file}: ${(e as Error).message}`, context, { cause: e });
  }
}

/** Checks that `file` is a regular file this process can read; throws the operator's error otherwise. */
export async function assertReadableFile(file: string, what = 'file'): Promise<fs.Stats> {
  let st: fs.Stats;
  try {
    st = await fs.promises.stat(file);
  } catch (e) {
    throw unreadableFile(file, e, what);
  }
  if (st.isDirectory()) throw unreadableFile(file, { code: 'EISDIR' }, what);
  if (!st.isFile())
    throw new EcluseError('E_INPUT', `${file} is not a regular file`, { check: checkId('input-file'), file });
  try {
    await fs.promises.access(file, fs.constants.R_OK);
  } catch (e) {
    throw unreadableFile(file, e, what);
  }
  return st;
}
