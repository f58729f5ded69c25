/**
 * The staged copy of an artifact (sneakernet/direct-file.ts): written with direct I/O through aligned blocks where the
 * file system takes it, through the page cache otherwise; either way the file holds exactly the bytes appended, in
 * order, whatever the sizes of the pieces and of the artifact, and is private to the station.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectFile, WriteBlocks } from '../../sneakernet/direct-file.js';
import { randomBytes, rmDir, tmpDir } from './fixtures.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Appends `bytes` in pieces of the given sizes (cycled), several appends overlapping as the stager makes them. */
async function stage(file: string, blocks: WriteBlocks, bytes: Buffer, pieces: number[]): Promise<DirectFile> {
  const out = await DirectFile.create(file, blocks, Infinity);
  const appends: Array<Promise<void>> = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.min(pieces[i % pieces.length] as number, bytes.length - at);
    // A copy: the stager's pieces are reused once their append resolved.
    appends.push(out.append(Buffer.from(bytes.subarray(at, at + n))));
    at += n;
  }
  await Promise.all(appends);
  await out.finish();
  return out;
}

describe('a staged artifact file', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tmpDir();
  });
  afterAll(async () => {
    await rmDir(dir);
  });

  const sizes = [0, 1, 511, 4095, 4096, 4097, MiB - 1, MiB, 3 * MiB + 12345];
  for (const mode of ['direct', 'page cache'] as const) {
    it(`holds exactly the bytes appended (${mode}; sizes ${sizes.join(', ')}; odd pieces)`, async () => {
      const blocks = new WriteBlocks(mode === 'page cache' ? { direct: false } : {});
      for (const size of sizes) {
        const bytes = randomBytes(size);
        const file = path.join(dir, `${mode.replace(' ', '-')}-${size}`);
        const out = await stage(file, blocks, bytes, [777, 64 * KiB + 3, MiB + 1, 512]);
        // The test machine's ext4 takes O_DIRECT: the direct case must really have used it.
        expect(out.direct).toBe(mode === 'direct');
        expect(out.size).toBe(size);
        const written = fs.readFileSync(file);
        expect(written.length).toBe(size);
        expect(written.equals(bytes)).toBe(true);
        expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      }
    });
  }

  it('leaves no stale bytes of an earlier, longer artifact in the padding of the last block', async () => {
    const blocks = new WriteBlocks();
    await stage(path.join(dir, 'long'), blocks, Buffer.alloc(2 * MiB, 0xaa), [MiB]);
    const short = randomBytes(MiB + 100);
    const file = path.join(dir, 'short');
    await stage(file, blocks, short, [300 * KiB]);
    expect(fs.readFileSync(file).equals(short)).toBe(true);
  });

  it('refuses to replace an existing file', async () => {
    const file = path.join(dir, 'taken');
    fs.writeFileSync(file, 'x');
    await expect(DirectFile.create(file, new WriteBlocks(), Infinity)).rejects.toMatchObject({ code: 'EEXIST' });
  });
});
