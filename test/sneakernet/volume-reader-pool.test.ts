/**
 * readVolume with the volume's SHA-256 computed in a lent worker pool (what the import does): the same verdicts as in
 * this thread (volume-reader.test.ts), and the pool is clean after a refusal, so the next volume hashes right.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool } from '../../sneakernet/digests.js';
import { type Volume } from '../../sneakernet/statement.js';
import { BLOCK, planVolumes } from '../../sneakernet/volume-plan.js';
import { readVolume } from '../../sneakernet/volume-reader.js';
import {
  collectingSink,
  drain,
  expectRefusal,
  randomBytes,
  rmDir,
  tmpDir,
  volumeFor,
  writeBundle,
} from './fixtures.js';

const DATA = randomBytes(3 * 1024 * 1024 + 17);
const VOL = 'vol-0001.tar';

describe('readVolume with a lent hash pool', () => {
  let dir: string;
  let n = 0;
  let good: { file: string; bytes: Buffer; volume: Volume };
  const pool = new HashPool(['sha256']);

  beforeAll(async () => {
    dir = await tmpDir();
    const sub = path.join(dir, 'good');
    await fs.promises.mkdir(sub);
    const b = await writeBundle(sub, [DATA], 64 * 1024 * 1024, planVolumes);
    const file = b.files[0] as string;
    good = { file, bytes: await fs.promises.readFile(file), volume: b.volumes[0] as Volume };
  });
  afterAll(async () => {
    await pool.close();
    await rmDir(dir);
  });

  async function put(bytes: Buffer): Promise<string> {
    const sub = path.join(dir, `case-${++n}`);
    await fs.promises.mkdir(sub);
    const file = path.join(sub, VOL);
    await fs.promises.writeFile(file, bytes);
    return file;
  }

  function flipped(at: number, mask = 0x01): Buffer {
    const b = Buffer.from(good.bytes);
    b[at] = (b[at] ?? 0) ^ mask;
    return b;
  }

  const readGood = async () => {
    const { sink, got } = collectingSink();
    await readVolume(good.file, good.volume, sink, undefined, { hashPool: pool });
    expect(got).toHaveLength(1);
    expect(got[0]?.bytes.equals(DATA)).toBe(true);
  };

  it('accepts the intact volume', readGood);

  it('a flipped data byte in the last MiB: E_DIGEST, then the pool reads the intact volume again', async () => {
    const bytes = flipped(BLOCK + DATA.length - 5);
    await expectRefusal(readVolume(await put(bytes), good.volume, drain, undefined, { hashPool: pool }), 'E_DIGEST');
    await readGood();
  });

  it('a flipped header byte (the parser fails mid-stream): E_DIGEST, then the pool is clean', async () => {
    const bytes = flipped(20, 0x20);
    await expectRefusal(readVolume(await put(bytes), good.volume, drain, undefined, { hashPool: pool }), 'E_DIGEST');
    await readGood();
  });

  it('a signed volume with bytes after the end of the archive: E_FORMAT (the digest matched), then clean', async () => {
    const bytes = flipped(good.bytes.length - 3);
    const signed = volumeFor(bytes, good.volume.entries);
    await expectRefusal(readVolume(await put(bytes), signed, drain, undefined, { hashPool: pool }), 'E_FORMAT', VOL);
    await readGood();
  });

  it('a sink that refuses mid-entry: its error, then the pool is clean', async () => {
    const sink = async (_e: unknown, data: AsyncIterable<Buffer>) => {
      for await (const _ of data) throw new Error('the staging disk is full');
    };
    const e = await expectRefusal(
      readVolume(good.file, good.volume, sink, undefined, { hashPool: pool }),
      'E_INTERNAL',
    );
    expect(e.message).toContain('staging disk is full');
    await readGood();
  });
});

describe('readVolume in this thread, multi-MiB volume', () => {
  it('regression (was a bug): a flipped header byte in a volume larger than the read-ahead failed with a RangeError (fd -1) instead of E_DIGEST', async () => {
    const dir = await tmpDir();
    try {
      const b = await writeBundle(dir, [DATA], 64 * 1024 * 1024, planVolumes);
      const file = b.files[0] as string;
      const bytes = await fs.promises.readFile(file);
      bytes[20] = (bytes[20] ?? 0) ^ 0x20;
      const bad = path.join(dir, 'bad.tar');
      await fs.promises.writeFile(bad, bytes);
      await expectRefusal(readVolume(bad, b.volumes[0] as Volume, drain), 'E_DIGEST');
    } finally {
      await rmDir(dir);
    }
  });
});
