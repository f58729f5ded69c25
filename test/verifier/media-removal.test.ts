/**
 * A stick pulled mid-read: the read error may come before the daemon notices the removal. The reader waits a short
 * grace for the removal signal on errors a vanishing medium causes, and only on those.
 */
import { describe, expect, it } from 'vitest';
import { EcluseError } from '../../sneakernet/errors.js';
import { looksLikeVanishingMedia, removedDuring } from '../../verifier/media-removal.js';

const ioError = () => new EcluseError('E_IO', 'cannot read volume vol-0001.tar: input/output error');
const errno = (code: string) => Object.assign(new Error(`${code}: read`), { code });

describe('removedDuring', () => {
  it('an I/O error followed shortly by the removal is the removal', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(new EcluseError('E_MEDIA_REMOVED', 'stick pulled')), 100);
    const started = Date.now();
    await expect(removedDuring(ioError(), ac.signal, 5000)).resolves.toBe(true);
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('an I/O error with no removal within the grace stays an I/O error', async () => {
    const ac = new AbortController();
    await expect(removedDuring(errno('EIO'), ac.signal, 50)).resolves.toBe(false);
    expect(ac.signal.aborted).toBe(false);
  });

  it('a fault of the bundle (E_DIGEST) is decided at once, even if the stick is pulled later', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(removedDuring(new EcluseError('E_DIGEST', 'bad'), ac.signal, 5000)).resolves.toBe(false);
  });

  it('an abort already seen is the removal whatever the error; without a signal nothing waits', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(removedDuring(new EcluseError('E_DIGEST', 'bad'), ac.signal)).resolves.toBe(true);
    await expect(removedDuring(ioError(), undefined)).resolves.toBe(false);
  });

  it('knows which errors a vanishing medium causes', () => {
    for (const c of ['EIO', 'ENODEV', 'ENXIO', 'ENOENT', 'ESTALE', 'ENOTCONN'])
      expect(looksLikeVanishingMedia(errno(c))).toBe(true);
    expect(looksLikeVanishingMedia(errno('EACCES'))).toBe(false);
    expect(looksLikeVanishingMedia(new EcluseError('E_SIGNATURE', 'x'))).toBe(false);
    expect(looksLikeVanishingMedia(new EcluseError('E_SIZE', 'x'))).toBe(true);
  });
});
