/**
 * sneakernet/volume-writer.ts reads its sources directly from the disk (O_DIRECT) in whole aligned blocks, from the
 * block at or before each range, skipping the bytes before it and after it: every range of a source must come out
 * exactly, wherever it starts and ends (a delta's segments; an OCI image's blobs carried back to back and split over
 * volumes; a range that ends at the end of the file, whose last block is short).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { planVolumes } from '../../sneakernet/volume-plan.js';
import { writeVolume } from '../../sneakernet/volume-writer.js';
import type { Segment } from '../../sneakernet/delta.js';
import { makeArtifact, packTar, randomBytes, rmDir, tmpDir } from './fixtures.js';

const MiB = 1024 * 1024;

describe('writeVolume reads its sources from any byte offset', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tmpDir('ecluse-volume-writer-');
  });
  afterAll(() => rmDir(dir));

  /**
   * Writes every volume of `carried` (read from `file` through `segments`), compares each with what tar-stream packs
   * from the same entries, and returns how many volumes there were.
   */
  async function roundTrip(file: string, carried: Buffer, segments: Segment[] | undefined, mediaSize: number) {
    const volumes = planVolumes([makeArtifact(0, carried)], mediaSize);
    const mtime = new Date('2026-12-03T00:00:00Z');
    for (const v of volumes) {
      const target = path.join(dir, `${path.basename(file)}-${v.name}`);
      await writeVolume(v, [{ file, ...(segments ? { segments } : {}) }], target, mtime);
      const expected = await packTar(
        v.entries.map((e) => ({
          header: { name: e.path, size: e.size, mtime, type: 'file' },
          data: carried.subarray(e.offset, e.offset + e.size),
        })),
      );
      expect(fs.readFileSync(target).equals(expected), v.name).toBe(true);
      fs.rmSync(target);
    }
    return volumes.length;
  }

  it('a delta: segments starting and ending inside blocks, the last one at the end of the file', async () => {
    const bytes = randomBytes(3 * MiB + 777);
    const file = path.join(dir, 'delta-base.bin');
    fs.writeFileSync(file, bytes);
    const segments = [
      { offset: 1, size: 4095 },
      { offset: 4097, size: MiB + 3 },
      { offset: 2 * MiB + 100, size: bytes.length - (2 * MiB + 100) },
    ];
    const carried = Buffer.concat(segments.map((s) => bytes.subarray(s.offset, s.offset + s.size)));
    expect(await roundTrip(file, carried, segments, 64 * MiB)).toBe(1);
  });

  it('parts of odd sizes carried back to back and split over volumes: ranges start inside blocks', async () => {
    const parts = [MiB + 1001, 7, 2 * MiB + 4097].map((n, i) => {
      const file = path.join(dir, `part-${i}.bin`);
      const bytes = randomBytes(n);
      fs.writeFileSync(file, bytes);
      return { file, size: n, bytes };
    });
    const carried = Buffer.concat(parts.map((p) => p.bytes));
    const volumes = planVolumes([makeArtifact(0, carried)], MiB + 3 * 512);
    expect(volumes.length).toBeGreaterThan(3);
    for (const v of volumes) {
      const target = path.join(dir, `parts-${v.name}`);
      await writeVolume(v, [{ parts: parts.map((p) => ({ file: p.file, size: p.size })) }], target, new Date(0));
      const expected = await packTar(
        v.entries.map((e) => ({
          header: { name: e.path, size: e.size, mtime: new Date(0), type: 'file' },
          data: carried.subarray(e.offset, e.offset + e.size),
        })),
      );
      expect(fs.readFileSync(target).equals(expected), v.name).toBe(true);
    }
  });
});
