/**
 * A stick pulled mid-read: the kernel's I/O error often reaches the reader before the daemon's mount-table poll sees
 * the stick gone (and aborts the import's signal). Reporting that error as a refusal would audit a good bundle as
 * refused (E_IO) where the truth is "removed, insert it again". So on an error that a vanishing medium causes, the
 * reader waits a short grace for the removal signal before deciding which it was.
 */
import { EcluseError } from '../sneakernet/errors.js';

/** Longer than two polls of the daemon's mount table (500 ms each): a removal is seen within it. */
export const MEDIA_GONE_GRACE_MS = 1500;

const VANISHING_ERRNOS = new Set(['EIO', 'ENODEV', 'ENXIO', 'ENOENT', 'ESTALE', 'ENOTCONN', 'EBADF']);
const VANISHING_CODES = new Set(['E_IO', 'E_SIZE', 'E_NOT_FOUND', 'E_MISSING_VOLUME']);

/** Whether `e` is what reading a medium that is being pulled out looks like. */
export function looksLikeVanishingMedia(e: unknown): boolean {
  if (e instanceof EcluseError) return VANISHING_CODES.has(e.code);
  const errno = (e as NodeJS.ErrnoException | null)?.code;
  return typeof errno === 'string' && VANISHING_ERRNOS.has(errno);
}

/**
 * After a read error: when a removal signal exists and the error looks like a vanishing medium, waits up to `graceMs`
 * for the signal to fire. Returns whether it did (the error was the removal, not a fault of the bundle).
 */
export async function removedDuring(
  e: unknown,
  signal: AbortSignal | undefined,
  graceMs = MEDIA_GONE_GRACE_MS,
): Promise<boolean> {
  if (!signal) return false;
  if (signal.aborted) return true;
  if (!looksLikeVanishingMedia(e)) return false;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, graceMs);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
  return signal.aborted;
}
