/**
 * The export station's content-defined chunking and recipes (relay/delta.ts): streaming cuts equal whole-file cuts,
 * cuts follow the content (an insertion near the start leaves the later chunks alone), and recipes merge runs.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import fastcdc from '@dstanesc/wasm-chunking-fastcdc-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blobChunks, chunkFile, chunkParams, type Chunk } from '../../relay/delta.js';
import { buildRecipe, refineInPlace } from '../../relay/recipe.js';
import { blobPath, openRelayHome } from '../../relay/catalog.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-delta-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, bytes: Buffer): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Rebuilds `target` from `base` by following the recipe, as the import station does. */
function rebuild(base: Buffer, ops: ReturnType<typeof buildRecipe>['ops'], target: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const op of ops) {
    parts.push(op.from === 'base' ? base.subarray(op.offset, op.offset + op.size) : target.subarray(at, at + op.size));
    at += op.size;
  }
  return Buffer.concat(parts);
}

describe('chunkFile', () => {
  it('cuts a file larger than its window exactly as chunking it whole would', async () => {
    const bytes = randomBytes(40 * 1024 * 1024 + 12345);
    const params = chunkParams(bytes.length);
    const chunks = await chunkFile(write('big', bytes), params);
    const cuts = fastcdc.compute_chunks(bytes, params.min, params.avg, params.max);
    expect(chunks.map((c) => c.offset)).toEqual(Array.from(cuts).slice(0, -1));
    expect(chunks.reduce((n, c) => n + c.size, 0)).toBe(bytes.length);
    for (const c of chunks.slice(0, 50)) {
      const sha = createHash('sha256')
        .update(bytes.subarray(c.offset, c.offset + c.size))
        .digest('hex');
      expect(c.sha256).toBe(sha);
    }
    expect(chunks.every((c, i) => i === chunks.length - 1 || (c.size >= params.min && c.size <= params.max))).toBe(
      true,
    );
  });

  it('handles an empty file and a file smaller than one chunk', async () => {
    expect(await chunkFile(write('empty', Buffer.alloc(0)), chunkParams(0))).toEqual([]);
    const small = await chunkFile(write('small', Buffer.from('tiny')), chunkParams(4));
    expect(small).toEqual([{ offset: 0, size: 4, sha256: createHash('sha256').update('tiny').digest('hex') }]);
  });

  it('finds the shared bytes after an insertion that shifts everything (what fixed blocks cannot)', async () => {
    const v1 = randomBytes(8 * 1024 * 1024);
    const v2 = Buffer.concat([v1.subarray(0, 1000), Buffer.from('inserted!'), v1.subarray(1000)]);
    const params = chunkParams(v2.length);
    const recipe = buildRecipe(await chunkFile(write('v1', v1), params), await chunkFile(write('v2', v2), params));
    expect(recipe.carried).toBeLessThan(3 * params.max);
    expect(rebuild(v1, recipe.ops, v2).equals(v2)).toBe(true);
  });
});

describe('refineInPlace', () => {
  /** `share` of the 4 KiB blocks changed in place, spread evenly: the worst case for content-defined chunks. */
  function scattered(v1: Buffer, share: number): Buffer {
    const v2 = Buffer.from(v1);
    const blocks = v1.length / 4096;
    const step = 1 / share;
    for (let k = 0; k * step < blocks; k++) randomBytes(4096).copy(v2, Math.floor(k * step) * 4096);
    return v2;
  }

  it('copies the unchanged blocks between scattered in-place changes: 5% of 4 KiB blocks cost about 5%', async () => {
    const v1 = randomBytes(16 * 1024 * 1024);
    const v2 = scattered(v1, 0.05);
    const params = chunkParams(v2.length);
    const [f1, f2] = [write('s1', v1), write('s2', v2)];
    const coarse = buildRecipe(await chunkFile(f1, params), await chunkFile(f2, params));
    const fine = await refineInPlace(coarse, f1, f2, v1.length);
    expect(coarse.carried).toBeGreaterThan(v2.length * 0.15); // chunks alone carry too much here
    expect(fine.carried).toBeLessThan(v2.length * 0.06);
    expect(rebuild(v1, fine.ops, v2).equals(v2)).toBe(true);
  });

  it('leaves runs alone where bytes were inserted, and still rebuilds exactly', async () => {
    const v1 = randomBytes(4 * 1024 * 1024);
    const v2 = scattered(Buffer.concat([v1.subarray(0, 100_000), randomBytes(777), v1.subarray(100_000)]), 0.02);
    const params = chunkParams(v2.length);
    const [f1, f2] = [write('i1', v1), write('i2', v2)];
    const fine = await refineInPlace(
      buildRecipe(await chunkFile(f1, params), await chunkFile(f2, params)),
      f1,
      f2,
      v1.length,
    );
    expect(rebuild(v1, fine.ops, v2).equals(v2)).toBe(true);
    expect(fine.carried).toBeLessThan(v2.length * 0.1);
  });
});

describe('blobChunks', () => {
  it('cuts a blob once and answers from the catalog afterwards', async () => {
    const home = openRelayHome(path.join(dir, 'relay-home'));
    try {
      const bytes = randomBytes(3 * 1024 * 1024);
      const sha = createHash('sha256').update(bytes).digest('hex');
      fs.writeFileSync(blobPath(home, sha), bytes);
      const params = chunkParams(bytes.length);
      const first = await blobChunks(home, sha, params);
      expect(first).toEqual(await chunkFile(blobPath(home, sha), params));
      fs.rmSync(blobPath(home, sha)); // the second answer cannot come from the file
      expect(await blobChunks(home, sha, params)).toEqual(first);
    } finally {
      home.db.close();
    }
  });
});

describe('buildRecipe', () => {
  const c = (offset: number, size: number, sha256: string): Chunk => ({ offset, size, sha256 });

  it('merges copies of consecutive base bytes and runs of carried chunks', () => {
    const base = [c(0, 10, 'a'), c(10, 10, 'b'), c(20, 10, 'c')];
    const target = [c(0, 10, 'a'), c(10, 10, 'b'), c(20, 5, 'x'), c(25, 5, 'y'), c(30, 10, 'c'), c(40, 10, 'a')];
    expect(buildRecipe(base, target)).toEqual({
      carried: 10,
      ops: [
        { from: 'base', offset: 0, size: 20 },
        { from: 'bundle', size: 10 },
        { from: 'base', offset: 20, size: 10 },
        { from: 'base', offset: 0, size: 10 },
      ],
    });
  });

  it('carries everything when nothing is shared', () => {
    expect(buildRecipe([c(0, 10, 'a')], [c(0, 4, 'x'), c(4, 4, 'y')])).toEqual({
      carried: 8,
      ops: [{ from: 'bundle', size: 8 }],
    });
  });
});

describe('chunkParams', () => {
  it('keeps 16 KiB chunks up to 1 GiB, then bounds the number of chunks', () => {
    expect(chunkParams(1024 ** 3)).toEqual({ min: 4096, avg: 16384, max: 65536 });
    const big = chunkParams(64 * 1024 ** 3);
    expect((64 * 1024 ** 3) / big.avg).toBeLessThanOrEqual(65_536);
    expect(chunkParams(2 ** 40).avg).toBe(1024 * 1024);
  });
});
