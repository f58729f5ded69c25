/**
 * The signed chunk list (docs/FORMAT.md 4.11) as the statement parser reads it: its bounds (chunk size a power of two
 * from 64 KiB to 1 GiB, lowercase hex, at most 65 536 digests) and its length, which must be exactly
 * ceil(size / chunk size) digests, checked before any volume is read. Also the writer's choice of chunk size.
 */
import { describe, expect, it } from 'vitest';
import {
  chunkCount,
  chunkDigest,
  chunkRange,
  CHUNK_SIZE_MAX,
  CHUNK_SIZE_MIN,
  WRITER_CHUNK_SIZE,
  WRITER_CHUNKS_MAX,
  writerChunkSize,
} from '../../sneakernet/chunk-list.js';
import { parseStatement, type Statement } from '../../sneakernet/statement.js';
import { clone, expectRefusal, makeArtifact, makeStatement, sha256 } from './fixtures.js';

const KiB = 1024;
/** 200 KiB + 1 byte: four 64 KiB chunks, the last one of 8 KiB + 1. */
const BYTES = Buffer.alloc(200 * KiB + 1, 0x5a);

function listOf(bytes: Buffer, size: number): string {
  let out = '';
  for (let at = 0; at < bytes.length; at += size) out += sha256(bytes.subarray(at, at + size));
  return out;
}

function valid(): Statement {
  const a = makeArtifact(0, BYTES, { chunks: { size: 64 * KiB, sha256: listOf(BYTES, 64 * KiB) } });
  const e = Buffer.alloc(0);
  const empty = makeArtifact(1, e);
  return makeStatement(
    [a, empty],
    [
      {
        name: 'vol-0001.tar',
        size: 1024 + 512 + Math.ceil(BYTES.length / 512) * 512 + 512,
        sha256: sha256('vol'),
        entries: [
          { path: `blobs/sha256/${a.sha256}`, artifact: 0, offset: 0, size: BYTES.length },
          { path: `blobs/sha256/${empty.sha256}`, artifact: 1, offset: 0, size: 0 },
        ],
      },
    ],
  );
}

type Chunked = { size: number; chunks?: { size: number; sha256: string } };
function mutated(f: (a: Chunked, s: Statement) => void): Buffer {
  const s = clone(valid());
  f(s.predicate.artifacts[0] as Chunked, s);
  return Buffer.from(JSON.stringify(s), 'utf8');
}
const refuse = (bytes: Buffer, ...inMessage: string[]) =>
  expectRefusal(() => parseStatement(bytes), 'E_FORMAT', ...inMessage);

describe('chunk list in the statement (4.11)', () => {
  it('a statement with a list parses, and one without (before 4.11) still does', () => {
    expect(parseStatement(mutated(() => undefined)).predicate.artifacts[0]?.chunks?.size).toBe(64 * KiB);
    expect(parseStatement(mutated((a) => delete a.chunks)).predicate.artifacts[0]).not.toHaveProperty('chunks');
  });

  it.each([
    ['below 64 KiB', CHUNK_SIZE_MIN / 2],
    ['above 1 GiB', CHUNK_SIZE_MAX * 2],
    ['not a power of two', 96 * KiB],
    ['not an integer', 65536.5],
  ])('a chunk size %s is refused', async (_what, size) => {
    await refuse(
      mutated((a) => {
        a.chunks = { size, sha256: listOf(BYTES, 64 * KiB) };
      }),
      'chunks.size',
    );
  });

  it('a list truncated by one digest, or one digest too long, or cut mid-digest, is refused naming the count', async () => {
    const list = listOf(BYTES, 64 * KiB);
    for (const sha of [list.slice(0, -64), list + sha256('x'), list.slice(0, -1)]) {
      await refuse(
        mutated((a) => {
          a.chunks = { size: 64 * KiB, sha256: sha };
        }),
        'chunk list of',
        'make 4',
      );
    }
  });

  it('the list of a chunk size other than the one it was made with has the wrong length, and is refused', async () => {
    await refuse(
      mutated((a) => {
        a.chunks = { size: 128 * KiB, sha256: listOf(BYTES, 64 * KiB) };
      }),
      'make 2',
    );
  });

  it('uppercase hex, an empty list and a list on an empty artifact are refused', async () => {
    await refuse(
      mutated((a) => {
        a.chunks = { size: 64 * KiB, sha256: listOf(BYTES, 64 * KiB).toUpperCase() };
      }),
      'chunks.sha256',
    );
    await refuse(
      mutated((a) => {
        a.chunks = { size: 64 * KiB, sha256: '' };
      }),
      'chunks.sha256',
    );
    await refuse(
      mutated((_a, s) => {
        (s.predicate.artifacts[1] as Chunked).chunks = { size: 64 * KiB, sha256: sha256('') };
      }),
      'is empty and cannot carry a chunk list',
    );
  });

  it('an unknown member in chunks is refused (the schema is closed)', async () => {
    await refuse(
      mutated((a) => {
        (a.chunks as Record<string, unknown>).count = 4;
      }),
      'chunks',
    );
  });

  it('ranges, digests and counts are those of fixed chunks with a short last one', () => {
    const s = parseStatement(mutated(() => undefined));
    const chunks = s.predicate.artifacts[0]?.chunks;
    if (!chunks) throw new Error('no chunks');
    expect(chunkCount(BYTES.length, chunks.size)).toBe(4);
    expect(chunkRange(3, chunks.size, BYTES.length)).toEqual({ start: 192 * KiB, end: BYTES.length });
    expect(chunkDigest(chunks, 3)).toBe(sha256(BYTES.subarray(192 * KiB)));
  });

  it('the writer uses 4 MiB chunks, doubled for large images, and no list for an empty one', () => {
    expect(writerChunkSize(0)).toBeNull();
    expect(writerChunkSize(1)).toBe(WRITER_CHUNK_SIZE);
    expect(writerChunkSize(WRITER_CHUNK_SIZE * WRITER_CHUNKS_MAX)).toBe(WRITER_CHUNK_SIZE);
    expect(writerChunkSize(WRITER_CHUNK_SIZE * WRITER_CHUNKS_MAX + 1)).toBe(2 * WRITER_CHUNK_SIZE);
    expect(writerChunkSize(CHUNK_SIZE_MAX * WRITER_CHUNKS_MAX + 1)).toBeNull();
    expect(writerChunkSize(CHUNK_SIZE_MAX * WRITER_CHUNKS_MAX)).toBe(CHUNK_SIZE_MAX);
  });
});
