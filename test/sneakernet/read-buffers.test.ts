/**
 * The import's data path without copies: readVolume reading into the caller's shared buffers and lending pieces of
 * them (sneakernet/read-buffers.ts), and a HashPool hashing such pieces where they lie (sneakernet/digests.ts
 * `shared`). Every piece lent comes back, also when the sink fails, and the bytes and digests are the ones read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../sneakernet/digests.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { ReadBuffers } from '../../sneakernet/read-buffers.js';
import type { Volume, VolumeEntry } from '../../sneakernet/statement.js';
import { planVolumes } from '../../sneakernet/volume-plan.js';
import { readVolume } from '../../sneakernet/volume-reader.js';
import { expectRefusal, md5, randomBytes, rmDir, sha256, sha512, tmpDir, writeBundle } from './fixtures.js';

const KiB = 1024;
// Two artifacts in one volume, neither a multiple of the tar block, the first over several read buffers.
const BIG = randomBytes(700 * KiB + 123);
const SMALL = randomBytes(5 * KiB + 7);

describe('readVolume lending pieces of the caller’s read buffers', () => {
  let dir: string;
  let volume: Volume;
  let file: string;
  const buffers = new ReadBuffers(4, 64 * KiB);
  const pool = new HashPool(['sha256', 'sha512', 'md5'], { slots: 4, shared: buffers.shared });

  beforeAll(async () => {
    dir = await tmpDir();
    const b = await writeBundle(dir, [BIG, SMALL], 64 * 1024 * 1024, planVolumes);
    volume = b.volumes[0] as Volume;
    file = b.files[0] as string;
    expect(volume.entries).toHaveLength(2);
  });
  afterAll(async () => {
    await pool.close();
    await rmDir(dir);
  });

  it('lends views of its buffers (no copies); each piece given back; the bytes are the artifacts’', async () => {
    const got: Buffer[] = [];
    let pieces = 0;
    await readVolume(
      file,
      volume,
      async (_entry, data) => {
        const parts: Buffer[] = [];
        for await (const piece of data) {
          expect(buffers.owns(piece)).toBe(true);
          expect(piece.length).toBeLessThanOrEqual(64 * KiB);
          pieces++;
          parts.push(Buffer.from(piece)); // a copy, made before the piece is given back
          buffers.release(piece);
        }
        got.push(Buffer.concat(parts));
      },
      undefined,
      { buffers },
    );
    expect(pieces).toBeGreaterThan(11); // 700 KiB through 64 KiB buffers
    expect(got[0]?.equals(BIG)).toBe(true);
    expect(got[1]?.equals(SMALL)).toBe(true);
    expect(buffers.lent).toBe(0);
  });

  it('a pool made with the buffers hashes the lent pieces in place, several in flight, like node:crypto', async () => {
    const results: Array<{ sha256: string; sha512: string; md5: string }> = [];
    await readVolume(
      file,
      volume,
      async (_entry: VolumeEntry, data) => {
        const hasher = pool.begin();
        const inFlight: Array<Promise<void>> = [];
        for await (const piece of data) {
          // Not awaited one by one: the pool keeps their order; a piece comes back once every worker hashed it.
          inFlight.push(hasher.update(piece).then(() => buffers.release(piece)));
        }
        await Promise.all(inFlight);
        results.push(await hasher.digest());
      },
      undefined,
      { buffers },
    );
    expect(results).toEqual([
      { sha256: sha256(BIG), sha512: sha512(BIG), md5: md5(BIG) },
      { sha256: sha256(SMALL), sha512: sha512(SMALL), md5: md5(SMALL) },
    ]);
    expect(buffers.lent).toBe(0);
  });

  it('a hashed piece is done with: overwriting it after update resolved changes no digest', async () => {
    const view = Buffer.from(buffers.shared[0] as SharedArrayBuffer, 0, 64 * KiB);
    BIG.copy(view, 0, 0, view.length);
    const hasher = pool.begin();
    await hasher.update(view);
    view.fill(0);
    expect((await hasher.digest()).sha256).toBe(sha256(BIG.subarray(0, 64 * KiB)));
  });

  it('a sink failing mid-entry (a full disk): its refusal, every piece back, the buffers ready for the next volume', async () => {
    const full = new EcluseError('E_NO_SPACE', 'the staging disk is full');
    let taken = 0;
    await expectRefusal(
      readVolume(
        file,
        volume,
        async (_entry, data) => {
          for await (const piece of data) {
            buffers.release(piece);
            if (++taken === 3) throw full;
          }
        },
        undefined,
        { buffers },
      ),
      'E_NO_SPACE',
    );
    expect(buffers.lent).toBe(0);
    // A flipped data byte read through the same buffers: E_DIGEST, and nothing left lent.
    const bytes = await fs.promises.readFile(file);
    bytes[600] = (bytes[600] as number) ^ 1;
    const bad = path.join(dir, 'flipped.tar');
    await fs.promises.writeFile(bad, bytes);
    await expectRefusal(
      readVolume(
        bad,
        volume,
        async (_entry, data) => {
          for await (const piece of data) buffers.release(piece);
        },
        undefined,
        { buffers },
      ),
      'E_DIGEST',
    );
    expect(buffers.lent).toBe(0);
  });
});
