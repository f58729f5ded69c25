/**
 * Delta artifacts (docs/FORMAT.md 4.6): an artifact rebuilt inside from a base artifact the import station already
 * holds plus the bytes the bundle carries. The recipe (`delta.ops`) is part of the signed statement; this module holds
 * the arithmetic both stations share: how many bytes travel, which ranges of the artifact they are, and the rules a
 * recipe must follow.
 */
import type { Artifact, Delta } from './statement.js';

/** A byte range of an artifact. */
export interface Segment {
  offset: number;
  size: number;
}

/** Bytes of the artifact the volume entries carry: all of it, or only the `bundle` ops of a delta. */
export function transferSize(a: Pick<Artifact, 'size' | 'delta'>): number {
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
export function deltaProblem(a: Artifact): string | null {
  const d = a.delta;
  if (!d) return null;
  if (d.base.sha256 === a.sha256) return `${a.name}@${a.version} names itself as its delta base`;
  let total = 0;
  for (const [i, op] of d.ops.entries()) {
    if (op.from === 'base' && op.offset + op.size > d.base.size) {
      return `delta op ${i} of ${a.name}@${a.version} reads past the end of its base (${d.base.size} bytes)`;
    }
    total += op.size;
  }
  if (total !== a.size) {
    return `the delta ops of ${a.name}@${a.version} rebuild ${total} bytes, not its size ${a.size}`;
  }
  return null;
}
