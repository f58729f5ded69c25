/**
 * The shared setup of the statement parser tests (test/sneakernet/statement.test.ts,
 * test/sneakernet/statement-consistency.test.ts): one valid statement built by hand, a way to break a fresh copy of it
 * in any shape, the E_FORMAT refusal they all expect, and mutable views into its volumes and entries.
 */
import { parseStatement, type Statement } from '../../sneakernet/statement.js';
import { clone, expectRefusal, makeArtifact, makeStatement, sha256 } from '../sneakernet/fixtures.js';

export const A0 = Buffer.alloc(1000, 0xa0);
export const A1 = Buffer.alloc(5000, 0xa1);
export const A2 = Buffer.alloc(0);

/**
 * A statement built by hand: artifact 0 (1000 bytes) whole in vol-0001; artifact 1 (5000 bytes) in two pieces, 4096
 * bytes in vol-0001 and 904 in vol-0002; artifact 2 (empty) whole in vol-0002.
 */
export function valid(): Statement {
  const artifacts = [makeArtifact(0, A0), makeArtifact(1, A1), makeArtifact(2, A2)];
  const [s0, s1, s2] = artifacts.map((a) => a.sha256) as [string, string, string];
  return makeStatement(artifacts, [
    {
      name: 'vol-0001.tar',
      size: 1024 + 512 + 1024 + 512 + 4096,
      sha256: sha256('vol 1'),
      entries: [
        { path: `blobs/sha256/${s0}`, artifact: 0, offset: 0, size: 1000 },
        { path: `blobs/sha256/${s1}.part0001`, artifact: 1, offset: 0, size: 4096 },
      ],
    },
    {
      name: 'vol-0002.tar',
      size: 1024 + 512 + 1024 + 512,
      sha256: sha256('vol 2'),
      entries: [
        { path: `blobs/sha256/${s1}.part0002`, artifact: 1, offset: 4096, size: 904 },
        { path: `blobs/sha256/${s2}`, artifact: 2, offset: 0, size: 0 },
      ],
    },
  ]);
}

/** Applies `f` to a fresh valid statement (as plain JSON, so any shape can be made) and serialises it. */
export function mutated(f: (s: Record<string, unknown> & Statement) => void): Buffer {
  const s = clone(valid()) as Record<string, unknown> & Statement;
  f(s);
  return Buffer.from(JSON.stringify(s), 'utf8');
}

export const refuse = (bytes: Buffer, ...inMessage: string[]) =>
  expectRefusal(() => parseStatement(bytes), 'E_FORMAT', ...inMessage);

/** Mutable views into the statement for the consistency cases. */
export const vol = (s: Statement, i: number) => s.predicate.volumes[i] as Statement['predicate']['volumes'][number];
export const entry = (s: Statement, v: number, e: number) =>
  vol(s, v).entries[e] as Statement['predicate']['volumes'][number]['entries'][number];
