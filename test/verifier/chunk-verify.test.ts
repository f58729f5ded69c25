/**
 * The import's chunk verification (verifier/chunk-verify.ts, docs/FORMAT.md 4.11) on real hashing threads: good bytes
 * give the signed sha256 (attested); with two bad chunks on two lanes the refusal names the first by index, whatever
 * lane reports first; bytes beyond the list are refused; an artifact without a list is hashed whole; with a whole-digest
 * pool beside (verifyAllDigests), the computed digests are returned and a bad chunk still comes first. Also when the
 * import runs in chunk mode.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HashPool } from '../../sneakernet/digests.js';
import { chunkMode, ChunkVerification } from '../../verifier/chunk-verify.js';
import type { Statement } from '../../sneakernet/statement.js';
import { makeArtifact, makeStatement, md5, refusal, sha256, sha512 } from '../sneakernet/fixtures.js';

const KiB = 1024;
const CHUNK = 64 * KiB;
const BYTES = randomBytes(5 * CHUNK + 1000); // six chunks, the last one short

function listOf(bytes: Buffer): string {
  let out = '';
  for (let at = 0; at < bytes.length; at += CHUNK) out += sha256(bytes.subarray(at, at + CHUNK));
  return out;
}

function statementFor(bytes: Buffer, chunked = true, plain: Buffer = Buffer.from('plain')): Statement {
  const a = makeArtifact(0, bytes, chunked ? { chunks: { size: CHUNK, sha256: listOf(bytes) }, md5: md5(bytes) } : {});
  const b = makeArtifact(1, plain, { md5: md5(plain) });
  const entry = (k: number, x: Buffer, hex: string) => ({
    path: `blobs/sha256/${hex}`,
    artifact: k,
    offset: 0,
    size: x.length,
  });
  return makeStatement(
    [a, b],
    [
      {
        name: 'vol-0001.tar',
        size: 1,
        sha256: sha256('v'),
        entries: [entry(0, bytes, a.sha256), entry(1, plain, b.sha256)],
      },
    ],
  );
}

/** Feeds `bytes` to a verifier of artifact `k` in 10 000-byte pieces and returns its digests. */
async function run(v: ChunkVerification, k: number, bytes: Buffer) {
  const h = v.begin(k);
  try {
    for (let at = 0; at < bytes.length; at += 10_000) await h.update(bytes.subarray(at, at + 10_000));
  } catch (e) {
    await h.digest().catch(() => undefined);
    throw e;
  }
  return h.digest();
}

const flipped = (bytes: Buffer, ...at: number[]) => {
  const copy = Buffer.from(bytes);
  for (const x of at) copy[x] = (copy[x] as number) ^ 0xff;
  return copy;
};

describe('chunk verification (4.11)', () => {
  it('good bytes give the signed sha256; an artifact without a list is hashed whole', async () => {
    const v = new ChunkVerification(statementFor(BYTES));
    try {
      expect(await run(v, 0, BYTES)).toEqual({ sha256: sha256(BYTES), sha256Attested: true });
      expect(await run(v, 1, Buffer.from('plain'))).toEqual({ sha256: sha256(Buffer.from('plain')) });
      expect(await run(v, 1, Buffer.from('plaim'))).toEqual({ sha256: sha256(Buffer.from('plaim')) });
    } finally {
      await v.close();
    }
  });

  it('names the first bad chunk by index, its bytes and volume, when two chunks on two lanes are bad', async () => {
    const v = new ChunkVerification(statementFor(BYTES));
    try {
      for (const at of [[4 * CHUNK + 3, 3 * CHUNK + 9], [2 * CHUNK], [BYTES.length - 1]]) {
        const first = Math.floor(Math.min(...at) / CHUNK);
        const e = await refusal(run(v, 0, flipped(BYTES, ...at)));
        expect(e.code).toBe('E_DIGEST');
        expect(e.context).toMatchObject({ check: 'artifact-chunk', artifact: 'image-0@1.0.0', chunk: first });
        const end = Math.min((first + 1) * CHUNK, BYTES.length) - 1;
        expect(e.message).toBe(
          `image-0 1.0.0: chunk ${first + 1} of 6 (bytes ${first * CHUNK}–${end}, read from vol-0001.tar) does not match the chunk list in the signed statement`,
        );
      }
      // The lanes are free again: the good bytes pass.
      expect(await run(v, 0, BYTES)).toEqual({ sha256: sha256(BYTES), sha256Attested: true });
    } finally {
      await v.close();
    }
  });

  it('refuses bytes beyond the list, and too few', async () => {
    const v = new ChunkVerification(statementFor(BYTES));
    try {
      const longer = Buffer.concat([BYTES, Buffer.alloc(CHUNK)]);
      expect((await refusal(run(v, 0, longer))).context).toMatchObject({ check: 'artifact-chunk' });
      const e = await refusal(run(v, 0, BYTES.subarray(0, 3 * CHUNK)));
      expect(e.message).toMatch(/3 chunks; the signed statement says \d+ bytes in 6/);
    } finally {
      await v.close();
    }
  });

  it('beside a whole-digest pool (verifyAllDigests): every digest computed, and a bad chunk refused first', async () => {
    const v = new ChunkVerification(statementFor(BYTES), 1, new HashPool(['sha256', 'sha512', 'md5'], { slots: 4 }));
    try {
      expect(await run(v, 0, BYTES)).toEqual({ sha256: sha256(BYTES), sha512: sha512(BYTES), md5: md5(BYTES) });
      expect((await refusal(run(v, 0, flipped(BYTES, 7)))).context).toMatchObject({ chunk: 0 });
    } finally {
      await v.close();
    }
  });

  it('chunk mode: a list somewhere, no verifyAllDigests, every VM image attesting md5', () => {
    const s = statementFor(BYTES);
    expect(chunkMode(s.predicate.artifacts, false)).toBe(true);
    expect(chunkMode(s.predicate.artifacts, true)).toBe(false);
    expect(chunkMode(statementFor(BYTES, false).predicate.artifacts, false)).toBe(false);
    const noMd5 = s.predicate.artifacts.map((a) => ({ ...a, md5: undefined }));
    expect(chunkMode(noMd5, false)).toBe(false);
  });
});
