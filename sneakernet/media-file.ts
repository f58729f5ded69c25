/**
 * Files on the media, opened and read as hostile input: no link, nothing but a regular file, no wait on a planted FIFO;
 * a volume read with direct I/O where the media's file system takes it (sneakernet/direct-io.ts), and refused when it
 * ends before the size its statement signed.
 */
import fs from 'node:fs';
import { EcluseError } from './errors.js';
import { checkId } from './check-ids.js';
import { openDirect, roundUp } from './direct-io.js';
import type { Volume } from './statement.js';

/** Opens a file on the media refusing links and anything but a regular file. */
export async function openMediaFile(
  file: string,
  what: string,
  o: { direct?: boolean } = {},
): Promise<{ fd: fs.promises.FileHandle; size: number; direct: boolean }> {
  let fd: fs.promises.FileHandle;
  let direct = false;
  try {
    // O_NONBLOCK: opening a FIFO planted on the media must not wait for a writer (for a regular file it changes
    // nothing); the type is refused right after, from fstat.
    const flags = fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK;
    ({ handle: fd, direct } = await openDirect(file, flags, undefined, o.direct === true));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new EcluseError('E_MISSING_VOLUME', `${what} is not on the media`, { check: checkId('volumes') });
    if (code === 'ELOOP')
      throw new EcluseError('E_FORMAT', `${what} is a symbolic link`, { check: checkId('media-file') });
    throw new EcluseError('E_IO', `cannot open ${what}: ${(e as Error).message}`, {}, { cause: e });
  }
  const st = await fd.stat();
  if (!st.isFile()) {
    await fd.close();
    throw new EcluseError('E_FORMAT', `${what} is not a regular file`, { check: checkId('media-file') });
  }
  return { fd, size: st.size, direct };
}

/**
 * Reads `want` bytes at `at` into `buf` (direct: in aligned lengths, the bytes past `want` ignored); a volume that
 * ends before them is refused (E_SIZE).
 */
export async function readFully(
  fd: fs.promises.FileHandle,
  buf: Buffer,
  want: number,
  at: number,
  direct: boolean,
  volume: Volume,
): Promise<number> {
  let n = 0;
  while (n < want) {
    const asked = direct ? Math.min(roundUp(want - n), buf.length - n) : want - n;
    const { bytesRead } = await fd.read(buf, n, asked, at + n);
    // A direct read stops short only at the end of the file (a next one would be unaligned).
    if (bytesRead === 0 || (direct && bytesRead < asked && n + bytesRead < want)) {
      throw new EcluseError(
        'E_SIZE',
        `volume ${volume.name} ended after ${at + n + bytesRead} bytes while being read, the statement says ${volume.size}`,
        { check: checkId('volume-size'), volume: volume.name },
      );
    }
    n += bytesRead;
  }
  return Math.min(n, want);
}
