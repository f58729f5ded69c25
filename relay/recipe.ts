/**
 * Recipes (docs/FORMAT.md 4.6): how the export station turns two chunk lists into the ops the import station follows.
 * Content-defined chunks find shared bytes wherever they moved to; a second pass then looks inside what would still
 * travel for blocks changed in place (a VM image's typical update), comparing it with the base bytes at the same
 * place, block by block, so that an unchanged 4 KiB block next to a changed one is copied rather than carried.
 */
import fs from 'node:fs';
import { LIMITS } from '../sneakernet/limits.js';
import type { Delta } from '../sneakernet/statement.js';
import type { Chunk } from './chunk.js';
import { EcluseError } from '../sneakernet/errors.js';

export interface Recipe {
  ops: Delta['ops'];
  /** Bytes that travel in the bundle. */
  carried: number;
}

/**
 * The recipe rebuilding `target` from `base`: a target chunk found in the base is copied from it, any other travels;
 * runs of copies from consecutive base bytes, and runs of travelling chunks, are merged into one op each.
 */
export function buildRecipe(base: readonly Chunk[], target: readonly Chunk[]): Recipe {
  const index = new Map<string, number>();
  for (const c of base) if (!index.has(c.sha256)) index.set(c.sha256, c.offset);
  const ops: Delta['ops'] = [];
  let carried = 0;
  for (const c of target) {
    const at = index.get(c.sha256);
    const last = ops[ops.length - 1];
    if (at !== undefined) {
      if (last?.from === 'base' && last.offset + last.size === at) last.size += c.size;
      else ops.push({ from: 'base', offset: at, size: c.size });
    } else {
      carried += c.size;
      if (last?.from === 'bundle') last.size += c.size;
      else ops.push({ from: 'bundle', size: c.size });
    }
  }
  return { ops, carried };
}

/** Granularity of the in-place comparison: a filesystem block. Pieces are aligned on the artifact's own offsets. */
export const IN_PLACE_BLOCK = 4096;
const WINDOW = 1024 * 1024;

type Op = Delta['ops'][number];

/** Appends `op`, merging it into the last one when they continue each other. */
function push(ops: Op[], op: Op): void {
  const last = ops[ops.length - 1];
  if (last?.from === 'bundle' && op.from === 'bundle') last.size += op.size;
  else if (last?.from === 'base' && op.from === 'base' && last.offset + last.size === op.offset) last.size += op.size;
  else ops.push({ ...op });
}

/**
 * Where the carried run `ops[i]` (at artifact offset `at`, `size` bytes) would sit in the base if it was changed in
 * place: right after the copy before it and right before the copy after it, which must then leave exactly `size`
 * bytes between them. Null when the run is not such a gap (something was inserted or removed there).
 */
function inPlaceBase(ops: readonly Op[], i: number, at: number, size: number, baseSize: number): number | null {
  const prev = ops[i - 1];
  const next = ops[i + 1];
  const after = prev?.from === 'base' ? prev.offset + prev.size : null;
  const before = next?.from === 'base' ? next.offset : null;
  let start: number;
  if (after !== null && before !== null) {
    if (before - after !== size) return null;
    start = after;
  } else if (after !== null) start = after;
  else if (before !== null) start = before - size;
  else start = at;
  return start >= 0 && start + size <= baseSize ? start : null;
}

/** Compares a carried run with the base bytes at `baseAt`, block by block, and returns the ops for it. */
async function compareRun(
  base: fs.promises.FileHandle,
  target: fs.promises.FileHandle,
  at: number,
  size: number,
  baseAt: number,
  files: { base: string; target: string },
): Promise<Op[]> {
  const ops: Op[] = [];
  const a = Buffer.alloc(WINDOW);
  const b = Buffer.alloc(WINDOW);
  for (let done = 0; done < size;) {
    const n = Math.min(WINDOW, size - done);
    const [ra, rb] = await Promise.all([target.read(a, 0, n, at + done), base.read(b, 0, n, baseAt + done)]);
    if (ra.bytesRead !== n || rb.bytesRead !== n) {
      const short = ra.bytesRead !== n ? files.target : files.base;
      throw new EcluseError(
        'E_STORE',
        `the catalog blob ${short} is shorter than the catalog records: the relay home is damaged; restore it from a backup, or remove the file and fetch or add that release again`,
        { check: 'catalog-blob', file: short },
      );
    }
    for (let p = 0; p < n;) {
      // Pieces end on the artifact's block boundaries.
      const end = Math.min(n, IN_PLACE_BLOCK * Math.floor((at + done + p) / IN_PLACE_BLOCK + 1) - (at + done));
      const same = a.subarray(p, end).equals(b.subarray(p, end));
      push(ops, same ? { from: 'base', offset: baseAt + done + p, size: end - p } : { from: 'bundle', size: end - p });
      p = end;
    }
    done += n;
  }
  return ops;
}

/**
 * Looks inside every carried run that sits where its counterpart sits in the base (a change in place) for blocks
 * that did not change, and copies those instead. The result rebuilds the same bytes; it is kept only when it carries
 * less and stays within the op limit.
 */
export async function refineInPlace(
  recipe: Recipe,
  baseFile: string,
  targetFile: string,
  baseSize: number,
): Promise<Recipe> {
  if (recipe.carried === 0) return recipe;
  const base = await fs.promises.open(baseFile, 'r');
  const target = await fs.promises.open(targetFile, 'r');
  try {
    const ops: Op[] = [];
    let at = 0;
    for (const [i, op] of recipe.ops.entries()) {
      const baseAt = op.from === 'bundle' ? inPlaceBase(recipe.ops, i, at, op.size, baseSize) : null;
      if (op.from === 'bundle' && baseAt !== null) {
        for (const o of await compareRun(base, target, at, op.size, baseAt, { base: baseFile, target: targetFile }))
          push(ops, o);
      } else push(ops, op);
      at += op.size;
      if (ops.length > LIMITS.deltaOps) return recipe;
    }
    const carried = ops.reduce((n, o) => n + (o.from === 'bundle' ? o.size : 0), 0);
    return carried < recipe.carried ? { ops, carried } : recipe;
  } finally {
    await base.close();
    await target.close();
  }
}
