/**
 * Chunk hashing (sneakernet/chunk-hashing.ts, docs/FORMAT.md 4.11) on real worker threads: whatever the pieces the
 * stream arrives in, each fixed-size chunk's SHA-256 (the last one short) equals node:crypto's over the same bytes,
 * every chunk is reported exactly once, an empty stream is one empty chunk, and a callback that throws fails the
 * stream without leaving a lane busy for the next one. Bytes lying in shared buffers (the import's read buffers) are
 * hashed where they lie: an update resolves only once its bytes are hashed, so the buffer may be reused from then on.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ChunkHashing } from '../../sneakernet/chunk-hashing.js';

const MiB = 1024 * 1024;
const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const hashing = new ChunkHashing(2);

afterAll(() => hashing.close());

/** Feeds `bytes` in pieces of pseudo-random sizes (1 byte to 3 MiB) and returns the digests by chunk index. */
async function chunked(bytes: Buffer, size: number, seed = 7): Promise<string[]> {
  const got: string[] = [];
  const stream = hashing.begin(size, (i, h) => {
    if (got[i] !== undefined) throw new Error(`chunk ${i} reported twice`);
    got[i] = h;
  });
  let x = seed;
  for (let at = 0; at < bytes.length;) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const n = 1 + (x % (3 * MiB));
    await stream.update(bytes.subarray(at, at + n));
    at += n;
  }
  await stream.finish();
  expect(stream.bytes).toBe(bytes.length);
  return got;
}

function expected(bytes: Buffer, size: number): string[] {
  const out: string[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(hex(bytes.subarray(at, at + size)));
  return out;
}

describe('chunk hashing on two lanes', () => {
  it('gives each chunk the SHA-256 of its bytes, with a short last chunk, whatever the pieces', async () => {
    const bytes = randomBytes(9 * MiB + 4321);
    for (const seed of [1, 2, 3]) expect(await chunked(bytes, MiB, seed)).toEqual(expected(bytes, MiB));
    expect(await chunked(bytes, 4 * MiB)).toEqual(expected(bytes, 4 * MiB));
  });

  it('a stream that ends on a chunk boundary has no empty extra chunk', async () => {
    const bytes = randomBytes(3 * MiB);
    expect(await chunked(bytes, MiB)).toEqual(expected(bytes, MiB));
  });

  it('overlapping updates (the stager does not wait for one before the next) are taken in order', async () => {
    const bytes = randomBytes(5 * MiB + 17);
    const got: string[] = [];
    const stream = hashing.begin(MiB, (i, h) => (got[i] = h));
    const calls: Array<Promise<void>> = [];
    for (let at = 0; at < bytes.length; at += 300_000) calls.push(stream.update(bytes.subarray(at, at + 300_000)));
    await Promise.all([...calls, stream.finish()]);
    expect(got).toEqual(expected(bytes, MiB));
  });

  it('one chunk of unbounded size is the whole stream; an empty stream is one empty chunk', async () => {
    const bytes = randomBytes(5 * MiB + 3);
    expect(await chunked(bytes, Infinity)).toEqual([hex(bytes)]);
    expect(await chunked(Buffer.alloc(0), MiB)).toEqual([hex(Buffer.alloc(0))]);
  });

  it('a callback that throws fails the stream, and the lanes serve the next stream', async () => {
    const stream = hashing.begin(MiB, (i) => {
      if (i === 1) throw new Error('chunk 1 is bad');
    });
    const run = async () => {
      for (let k = 0; k < 6; k++) await stream.update(randomBytes(MiB));
      await stream.finish();
    };
    await expect(run()).rejects.toThrow('chunk 1 is bad');
    await stream.finish().catch(() => undefined);
    const bytes = randomBytes(2 * MiB + 1);
    expect(await chunked(bytes, MiB)).toEqual(expected(bytes, MiB));
  });

  it('bytes in shared buffers are hashed in place: each buffer is reused as soon as its update resolves', async () => {
    const shared = [new SharedArrayBuffer(MiB), new SharedArrayBuffer(MiB)];
    const views = shared.map((b) => Buffer.from(b));
    const inPlace = new ChunkHashing(2, { slots: 2, shared });
    try {
      const bytes = randomBytes(10 * MiB + 999);
      const got: string[] = [];
      const stream = inPlace.begin(2 * MiB, (i, h) => (got[i] = h));
      // Two buffers in turn, as the reader fills them: each is overwritten with the next bytes once its update
      // resolved (then with garbage, which no digest may see), while the other's update is still under way.
      const pending: Array<Promise<void> | null> = [null, null];
      for (let k = 0, at = 0; at < bytes.length; k++, at += MiB) {
        const b = k % 2;
        await pending[b];
        const view = views[b] as Buffer;
        const n = bytes.copy(view, 0, at, at + MiB);
        pending[b] = stream.update(view.subarray(0, n)).then(() => void view.fill(0xee));
      }
      await Promise.all([...pending, stream.finish()]);
      expect(got).toEqual(expected(bytes, 2 * MiB));
    } finally {
      await inPlace.close();
    }
  });
});
