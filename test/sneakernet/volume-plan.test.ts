import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkConsistency, entryPath, volumeName } from '../../sneakernet/statement.js';
import {
  BLOCK,
  END_OF_ARCHIVE,
  MIN_VOLUME_BYTES,
  parseByteSize,
  planVolumes,
  type PlannedVolume,
} from '../../sneakernet/volume-plan.js';
import { LIMITS } from '../../sneakernet/limits.js';
import {
  expectRefusal,
  makeArtifact,
  makeStatement,
  prng,
  randomBytes,
  rmDir,
  sha256,
  tmpDir,
  writeBundle,
} from './fixtures.js';

const K = 1024;
const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;
/** A fake but well-formed sha256 for artifact i (planning only looks at the hex and the size). */
const fakeSha = (i: number) => sha256(`artifact ${i}`);

/** Every property a plan must have, for artifacts of the given sizes on media of `media` bytes. */
function checkPlan(sizes: number[], media: number, plan: PlannedVolume[]): void {
  const where = `sizes=${JSON.stringify(sizes)} media=${media}`;
  expect(plan.length, where).toBeGreaterThan(0);
  // Volumes: consecutive names, never over the media size, size = what a ustar writer produces, never empty.
  plan.forEach((v, i) => {
    expect(v.name, where).toBe(volumeName(i));
    expect(v.size, where).toBeLessThanOrEqual(media);
    expect(v.size, where).toBe(END_OF_ARCHIVE + v.entries.reduce((s, e) => s + BLOCK + padded(e.size), 0));
    if (sizes.length > 0) expect(v.entries.length, `${where}: ${v.name} is empty`).toBeGreaterThan(0);
  });
  // A volume is only closed when not even one more header and one data block fit (no wasted media).
  plan.slice(0, -1).forEach((v) => expect(media - v.size, `${where}: ${v.name} closed early`).toBeLessThan(2 * BLOCK));
  // Every byte of every artifact exactly once, in order: pieces of artifact i are contiguous, cover [0, size).
  const flat = plan.flatMap((v) => v.entries);
  let cursor = 0;
  sizes.forEach((size, i) => {
    const pieces: typeof flat = [];
    while (cursor < flat.length && flat[cursor]?.artifact === i) pieces.push(flat[cursor++] as (typeof flat)[number]);
    expect(pieces.length, `${where}: artifact ${i} has no entry`).toBeGreaterThan(0);
    let offset = 0;
    pieces.forEach((p, n) => {
      expect(p.offset, where).toBe(offset);
      if (size > 0) expect(p.size, `${where}: empty piece of a non-empty artifact`).toBeGreaterThan(0);
      if (n < pieces.length - 1) expect(p.size % BLOCK, `${where}: inner piece not block-aligned`).toBe(0);
      expect(p.path, where).toBe(entryPath(fakeSha(i), n + 1, pieces.length));
      offset += p.size;
    });
    expect(offset, where).toBe(size);
    if (size === 0) expect(pieces.length, where).toBe(1);
  });
  expect(cursor, `${where}: entries for unknown artifacts`).toBe(flat.length);
}

function plan(sizes: number[], media: number): PlannedVolume[] {
  return planVolumes(
    sizes.map((size, i) => ({ sha256: fakeSha(i), size })),
    media,
  );
}

const EDGE_SIZES = [0, 1, 511, 512, 513, 1023, 1024, 1025, 64 * K - 2048, 64 * K - 1536, 64 * K - 1024, 64 * K];
const MEDIA = [
  MIN_VOLUME_BYTES,
  MIN_VOLUME_BYTES + 1,
  MIN_VOLUME_BYTES + 511,
  MIN_VOLUME_BYTES + 512,
  100_000,
  128 * K,
  1024 * K + 7,
];

describe('planVolumes', () => {
  it('refuses media smaller than 64K, and non-integer sizes', async () => {
    for (const m of [
      0,
      1,
      512,
      MIN_VOLUME_BYTES - 1,
      Number.NaN,
      Infinity,
      -MIN_VOLUME_BYTES,
      MIN_VOLUME_BYTES + 0.5,
    ]) {
      await expectRefusal(() => plan([10], m), 'E_USAGE', '64K');
    }
    expect(plan([10], MIN_VOLUME_BYTES)).toHaveLength(1);
  });

  it('plans single edge-size artifacts on every media size', () => {
    for (const media of MEDIA) {
      for (const size of [...EDGE_SIZES, media - 1, media, media + 1, 3 * media, 3 * media + 513, 5 * media - 1]) {
        checkPlan([size], media, plan([size], media));
      }
    }
  });

  it('plans lists of edge-size artifacts, including runs of empty ones at volume boundaries', () => {
    for (const media of MEDIA) {
      const sizes = [...EDGE_SIZES, 0, 0, media - 3 * BLOCK, 0, 512, media, 0, 2 * media + 1, 1, 0];
      checkPlan(sizes, media, plan(sizes, media));
      // Fill the first volume to exactly its capacity, then an empty artifact: it must go in the next volume.
      const exact = [media - END_OF_ARCHIVE - BLOCK, 0, 1];
      const p = plan(exact, media);
      checkPlan(exact, media, p);
      expect(p[0]?.size).toBe(media - (media % BLOCK));
    }
  });

  it('stores an artifact that exactly fills the data room in one piece', () => {
    const media = 64 * K;
    const size = media - END_OF_ARCHIVE - BLOCK;
    const p = plan([size], media);
    expect(p).toHaveLength(1);
    expect(p[0]?.size).toBe(media);
    expect(p[0]?.entries[0]?.path).toBe(entryPath(fakeSha(0), 1, 1));
    const over = plan([size + 1], media);
    expect(over).toHaveLength(2);
    expect(over.map((v) => v.entries.map((e) => e.path))).toEqual([
      [entryPath(fakeSha(0), 1, 2)],
      [entryPath(fakeSha(0), 2, 2)],
    ]);
    expect(over[1]?.entries[0]).toMatchObject({ offset: size, size: 1 });
  });

  it('spreads a large artifact over many volumes with numbered pieces', () => {
    const media = 64 * K;
    const size = 10 * media + 12_345;
    const p = plan([size], media);
    checkPlan([size], media, p);
    expect(p.length).toBeGreaterThanOrEqual(11);
    expect(p[0]?.entries[0]?.path).toMatch(/\.part0001$/);
    expect(p.at(-1)?.entries.at(-1)?.path).toMatch(new RegExp(`\\.part${String(p.length).padStart(4, '0')}$`));
  });

  it('holds for random artifact lists (seeded)', () => {
    const rnd = prng(0xec1a5e);
    for (let run = 0; run < 300; run++) {
      const media = MIN_VOLUME_BYTES + Math.floor(rnd() * 200 * K);
      const n = 1 + Math.floor(rnd() * 12);
      const sizes = Array.from({ length: n }, () => {
        const r = rnd();
        if (r < 0.15) return EDGE_SIZES[Math.floor(rnd() * EDGE_SIZES.length)] ?? 0;
        if (r < 0.3) return Math.floor(rnd() * 4) * BLOCK + Math.floor(rnd() * 3) - 1 + BLOCK; // near block bounds
        if (r < 0.4) return Math.floor(rnd() * 6 * media); // larger than several volumes
        return Math.floor(rnd() * media);
      });
      checkPlan(sizes, media, plan(sizes, media));
    }
  });

  it('holds for arbitrary artifact lists (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: MIN_VOLUME_BYTES, max: 512 * K }),
        fc.array(fc.oneof(fc.constantFrom(...EDGE_SIZES), fc.nat({ max: 3 * 1024 * K })), {
          minLength: 1,
          maxLength: 20,
        }),
        (media, sizes) => checkPlan(sizes, media, plan(sizes, media)),
      ),
      { numRuns: 200 },
    );
  });

  it('gives a plan whose statement passes checkConsistency', () => {
    const sizes = [0, 1, 511, 512, 513, 200_000, 70_000, 2];
    const artifacts = sizes.map((s, i) => makeArtifact(i, Buffer.alloc(s, i)));
    const p = planVolumes(artifacts, MIN_VOLUME_BYTES);
    const volumes = p.map((v) => ({ name: v.name, size: v.size, sha256: sha256(v.name), entries: v.entries }));
    expect(() => checkConsistency(makeStatement(artifacts, volumes))).not.toThrow();
  });

  it('caps a volume at the 1 TiB format limit even on larger media', () => {
    const p = plan([LIMITS.volumeBytes], 4 * LIMITS.volumeBytes);
    expect(p).toHaveLength(2);
    p.forEach((v) => expect(v.size).toBeLessThanOrEqual(LIMITS.volumeBytes));
  });

  it('refuses a bundle that needs more volumes than the format allows', async () => {
    await expectRefusal(() => plan([MIN_VOLUME_BYTES * (LIMITS.volumes + 1)], MIN_VOLUME_BYTES), 'E_USAGE', 'volumes');
  });
});

describe('planned size equals what writeVolume writes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tmpDir();
  });
  afterAll(() => rmDir(dir));

  const cases: Array<{ label: string; sizes: number[]; media: number }> = [
    { label: 'edge sizes, 64K media', sizes: [0, 1, 511, 512, 513, 1024, 0], media: MIN_VOLUME_BYTES },
    { label: 'exact volume fill then empty', sizes: [MIN_VOLUME_BYTES - 1536, 0, 5], media: MIN_VOLUME_BYTES },
    { label: 'larger than several volumes, odd media', sizes: [3, 5 * 70_001 + 17, 513], media: 70_001 },
    { label: 'multiples of the block size', sizes: [4096, 8192, 65536, 512 * 300], media: 100 * 1024 },
  ];
  const rnd = prng(42);
  for (let i = 0; i < 3; i++) {
    const media = MIN_VOLUME_BYTES + Math.floor(rnd() * 64 * K);
    cases.push({
      label: `random #${i}`,
      sizes: Array.from({ length: 2 + Math.floor(rnd() * 6) }, () => Math.floor(rnd() * 2.5 * media)),
      media,
    });
  }

  for (const c of cases) {
    it(c.label, async () => {
      const sub = path.join(dir, c.label.replace(/[^a-z0-9]+/gi, '-'));
      await fs.promises.mkdir(sub);
      const data = c.sizes.map((s) => randomBytes(s));
      const b = await writeBundle(sub, data, c.media, planVolumes);
      checkPlan(
        c.sizes,
        c.media,
        b.plan.map((v) => ({
          ...v,
          // checkPlan uses fake digests; map the real content-addressed paths back for the name check
          entries: v.entries.map((e) => ({
            ...e,
            path: e.path.replace(b.artifacts[e.artifact]?.sha256 ?? '', fakeSha(e.artifact)),
          })),
        })),
      );
      for (const [i, v] of b.plan.entries()) {
        const st = await fs.promises.stat(b.files[i] as string);
        expect(st.size, v.name).toBe(v.size);
        expect(b.volumes[i]?.size).toBe(v.size);
        expect(st.size).toBeLessThanOrEqual(c.media);
      }
    });
  }
});

describe('parseByteSize', () => {
  it.each([
    ['0', 0],
    ['1048576', 1_048_576],
    ['512B', 512],
    ['512b', 512],
    ['64K', 64 * K],
    ['64k', 64 * K],
    ['64KB', 64 * K],
    ['64KiB', 64 * K],
    ['64 K', 64 * K],
    ['  700M  ', 700 * K * K],
    ['4G', 4 * K ** 3],
    ['4gib', 4 * K ** 3],
    ['1.5G', 1.5 * K ** 3],
    ['0.5K', 512],
    ['1.0001K', 1024],
    ['2T', 2 * K ** 4],
  ])('%j is %d bytes', (text, bytes) => {
    expect(parseByteSize(text)).toBe(bytes);
  });

  it.each([
    '',
    ' ',
    'abc',
    '-1',
    '-64K',
    '+64K',
    '4X',
    '4GG',
    '1e6',
    '.5G',
    '5.G',
    '4 G B',
    '0x100',
    '64K!',
    'K',
    '4P',
    '1,5G',
    '١٢',
  ])('refuses %j', async (text) => {
    await expectRefusal(() => parseByteSize(text), 'E_USAGE', 'not a size');
  });

  it('media sizes below 64K parse but are refused by the planner', async () => {
    expect(parseByteSize('63K')).toBe(63 * K);
    await expectRefusal(() => planVolumes([{ sha256: fakeSha(0), size: 1 }], parseByteSize('63K')), 'E_USAGE');
    await expectRefusal(() => planVolumes([{ sha256: fakeSha(0), size: 1 }], parseByteSize('65535')), 'E_USAGE');
    expect(planVolumes([{ sha256: fakeSha(0), size: 1 }], parseByteSize('64K'))).toHaveLength(1);
  });

  it('an absurdly large number is refused when parsed, before any planning', async () => {
    await expectRefusal(async () => parseByteSize('9'.repeat(400)), 'E_USAGE');
  });
});
