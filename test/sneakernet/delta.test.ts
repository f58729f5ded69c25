/**
 * Delta artifacts in the statement (docs/FORMAT.md 4.6): the recipe's schema and consistency rules, and the
 * arithmetic both stations share (bytes carried, the artifact ranges they are, the file ranges of a volume entry).
 */
import { describe, expect, it } from 'vitest';
import { literalSegments, transferSize } from '../../sneakernet/delta.js';
import {
  deltaOf,
  encodeStatement,
  parseStatement,
  type Artifact,
  type Delta,
  type Statement,
} from '../../sneakernet/statement.js';
import { fileRanges } from '../../sneakernet/volume-writer.js';
import { clone, expectRefusal, makeArtifact, makeStatement, sha256 } from './fixtures.js';

const IMAGE = Buffer.alloc(1000, 0xd1);
const BASE = { name: 'image-0', version: '0.9', size: 800, sha256: sha256('base') };
/** 600 bytes from the base, 300 carried, 100 from the base again: the entry carries 300 bytes. */
const OPS: Delta['ops'] = [
  { from: 'base', offset: 0, size: 600 },
  { from: 'bundle', size: 300 },
  { from: 'base', offset: 700, size: 100 },
];

function valid(): Statement {
  const a = makeArtifact(0, IMAGE, { delta: { base: BASE, ops: OPS } });
  return makeStatement(
    [a],
    [
      {
        name: 'vol-0001.tar',
        size: 1024 + 512 + 512,
        sha256: sha256('vol 1'),
        entries: [{ path: `blobs/sha256/${a.sha256}`, artifact: 0, offset: 0, size: 300 }],
      },
    ],
  );
}

function mutated(f: (s: Statement) => void): Buffer {
  const s = clone(valid());
  f(s);
  return Buffer.from(JSON.stringify(s), 'utf8');
}
const delta = (s: Statement) => deltaOf(s.predicate.artifacts[0] as Artifact) as Delta;
const refuse = (bytes: Buffer, ...inMessage: string[]) =>
  expectRefusal(() => parseStatement(bytes), 'E_FORMAT', ...inMessage);

describe('a delta artifact in the statement', () => {
  it('is accepted when its entries carry exactly the bundle ops', () => {
    const s = parseStatement(encodeStatement(valid()));
    expect(delta(s).ops).toHaveLength(3);
    expect(transferSize(s.predicate.artifacts[0] as Statement['predicate']['artifacts'][number])).toBe(300);
  });

  it.each<[string, (s: Statement) => void, string]>([
    [
      'ops that rebuild fewer bytes than the size',
      (s) => (delta(s).ops[0] = { ...OPS[0], size: 500 } as Delta['ops'][number]),
      'rebuild',
    ],
    [
      'a copy past the end of the base',
      (s) => (delta(s).ops[2] = { from: 'base', offset: 750, size: 100 }),
      'past the end',
    ],
    ['the artifact as its own base', (s) => (delta(s).base.sha256 = s.predicate.artifacts[0]?.sha256 ?? ''), 'itself'],
    [
      'entries covering the whole artifact instead of what travels',
      (s) => {
        const e = s.predicate.volumes[0]?.entries[0];
        if (e) e.size = 1000;
      },
      'more than the 300 bytes',
    ],
    ['an empty recipe', (s) => (delta(s).ops = []), 'malformed'],
    ['an op of zero bytes', (s) => (delta(s).ops[1] = { from: 'bundle', size: 0 }), 'malformed'],
    ['an op of an unknown kind', (s) => ((delta(s).ops[1] as { from: string }).from = 'network'), 'malformed'],
    ['an op with an extra member', (s) => ((delta(s).ops[1] as Record<string, unknown>).url = 'http://x'), 'malformed'],
    ['a bundle op with an offset', (s) => ((delta(s).ops[1] as Record<string, unknown>).offset = 0), 'malformed'],
    ['a base without its sha256', (s) => delete (delta(s).base as Partial<Delta['base']>).sha256, 'malformed'],
  ])('is refused with E_FORMAT: %s', async (_what, f, message) => {
    await refuse(mutated(f), message);
  });
});

describe('delta arithmetic', () => {
  it('literalSegments gives the carried ranges of the artifact, adjacent ones merged', () => {
    expect(literalSegments({ base: BASE, ops: OPS })).toEqual([{ offset: 600, size: 300 }]);
    const ops: Delta['ops'] = [
      { from: 'bundle', size: 10 },
      { from: 'bundle', size: 5 },
      { from: 'base', offset: 0, size: 20 },
      { from: 'bundle', size: 7 },
    ];
    expect(literalSegments({ base: BASE, ops })).toEqual([
      { offset: 0, size: 15 },
      { offset: 35, size: 7 },
    ]);
    expect(transferSize({ size: 42, delta: { base: BASE, ops } })).toBe(22);
    expect(transferSize({ size: 42 })).toBe(42);
  });

  it('fileRanges maps a volume entry onto the carried ranges', () => {
    const source = {
      file: 'x',
      segments: [
        { offset: 100, size: 50 },
        { offset: 300, size: 50 },
        { offset: 1000, size: 10 },
      ],
    };
    expect(fileRanges(source, 0, 110)).toEqual([
      { offset: 100, size: 50 },
      { offset: 300, size: 50 },
      { offset: 1000, size: 10 },
    ]);
    expect(fileRanges(source, 40, 20)).toEqual([
      { offset: 140, size: 10 },
      { offset: 300, size: 10 },
    ]);
    expect(fileRanges(source, 105, 5)).toEqual([{ offset: 1005, size: 5 }]);
    expect(fileRanges({ file: 'x' }, 7, 9)).toEqual([{ offset: 7, size: 9 }]);
  });
});
