/**
 * Delta artifacts (docs/FORMAT.md 4.6): an artifact rebuilt inside from a base artifact the import station already
 * holds plus the bytes the bundle carries. The recipe (`delta.ops`) is part of the signed statement; this module holds
 * the arithmetic both stations share: how many bytes travel, which ranges of the artifact they are, and the rules a
 * recipe must follow.
 */
import { z } from 'zod';
import { LIMITS } from './limits.js';
import { artifactSize, identifier, imageName, sha256Hex } from './schema-parts.js';
import { subjectName } from './subject.js';

/**
 * Optional (4.6): the artifact travels as a delta against a base artifact the import station already holds. The ops
 * rebuild the artifact in order: `base` copies a byte range of the base, `bundle` takes the next bytes of the
 * artifact's volume entries (which then carry only those bytes). The rebuilt bytes must match `sha256`/`sha512`.
 */
export const deltaSchema = z.strictObject({
  base: z.strictObject({ name: imageName, version: identifier, size: artifactSize, sha256: sha256Hex }),
  ops: z
    .array(
      z.discriminatedUnion('from', [
        z.strictObject({ from: z.literal('base'), offset: artifactSize, size: artifactSize.min(1) }),
        z.strictObject({ from: z.literal('bundle'), size: artifactSize.min(1) }),
      ]),
    )
    .min(1)
    .max(LIMITS.deltaOps),
});
export type Delta = z.infer<typeof deltaSchema>;

/** What a recipe is checked against: the artifact it rebuilds (the statement's `Artifact` is one). */
export interface DeltaSubject {
  name: string;
  version: string;
  size: number;
  sha256: string;
  delta?: Delta | undefined;
}

/** A byte range of an artifact. */
export interface Segment {
  offset: number;
  size: number;
}

/** Bytes of the artifact the volume entries carry: all of it, or only the `bundle` ops of a delta. */
export function transferSize(a: Pick<DeltaSubject, 'size' | 'delta'>): number {
  if (!a.delta) return a.size;
  let n = 0;
  for (const op of a.delta.ops) if (op.from === 'bundle') n += op.size;
  return n;
}

/**
 * The ranges of the artifact that travel in the bundle, in order (adjacent `bundle` ops merged): what the writer reads
 * from its copy of the artifact to fill the entries. Derived from the recipe alone, so a resent bundle rebuilds them.
 */
export function literalSegments(delta: Delta): Segment[] {
  const out: Segment[] = [];
  let at = 0;
  for (const op of delta.ops) {
    if (op.from === 'bundle') {
      const last = out[out.length - 1];
      if (last && last.offset + last.size === at) last.size += op.size;
      else out.push({ offset: at, size: op.size });
    }
    at += op.size;
  }
  return out;
}

/** What is wrong with an artifact's recipe (4.3 rule 10), or null. */
export function deltaProblem(a: DeltaSubject): string | null {
  const d = a.delta;
  if (!d) return null;
  const key = subjectName(a);
  if (d.base.sha256 === a.sha256) return `${key} names itself as its delta base`;
  let total = 0;
  for (const [i, op] of d.ops.entries()) {
    if (op.from === 'base' && op.offset + op.size > d.base.size) {
      return `delta op ${i} of ${key} reads past the end of its base (${d.base.size} bytes)`;
    }
    total += op.size;
  }
  if (total !== a.size) {
    return `the delta ops of ${key} rebuild ${total} bytes, not its size ${a.size}`;
  }
  return null;
}
