/**
 * Signed per-chunk digests (docs/FORMAT.md 4.11, an addition to v1): an artifact MAY carry `chunks: { size, sha256 }`,
 * the SHA-256 of each `size`-byte chunk of its bytes (the last one shorter), written as their lowercase hex digests
 * back to back. The list is signed with the statement, so a reader knows it before the first artifact byte arrives:
 * it can hash chunks on several cores and refuse the first bad one by its index and byte range.
 *
 * This module is the list's schema, its bounds and its arithmetic; hashing is sneakernet/chunk-hashing.ts.
 */
import { z } from 'zod';

/** Smallest and largest chunk size (both powers of two): 64 KiB, 1 GiB. */
export const CHUNK_SIZE_MIN = 2 ** 16;
export const CHUNK_SIZE_MAX = 2 ** 30;
/** Most chunks one artifact may list (64 hex characters each: 4 MiB of list at most, the statement's own bound). */
export const CHUNKS_MAX = 65_536;
/**
 * The reference writer's chunk size, doubled for an artifact that would need more than WRITER_CHUNKS_MAX chunks (8 KiB of
 * hex per artifact: the statement, carried in every signature file, stays small; two lanes stay busy all the same).
 */
export const WRITER_CHUNK_SIZE = 4 * 1024 * 1024;
export const WRITER_CHUNKS_MAX = 128;
/** The reference writer's budget of chunks per bundle (1 MiB of hex in the statement): over it, no artifact has chunks. */
export const WRITER_BUNDLE_CHUNKS_MAX = 16_384;

const HEX_PER_CHUNK = 64;

export const chunksSchema = z.strictObject({
  /** Bytes per chunk (the last one may be shorter): a power of two, 64 KiB to 1 GiB. */
  size: z
    .number()
    .int()
    .min(CHUNK_SIZE_MIN)
    .max(CHUNK_SIZE_MAX)
    .refine((n) => (n & (n - 1)) === 0, 'a power of two'),
  /** The chunks' SHA-256 digests, lowercase hex, back to back, in order (64 characters per chunk). */
  sha256: z
    .string()
    .min(HEX_PER_CHUNK)
    .max(HEX_PER_CHUNK * CHUNKS_MAX)
    .regex(/^[0-9a-f]+$/, 'lowercase hex'),
});

export type Chunks = z.infer<typeof chunksSchema>;

/** How many chunks of `chunkSize` cover `size` bytes (0 for an empty artifact, which carries no chunk list). */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** Byte range `[start, end)` of chunk `index` of an artifact of `size` bytes. */
export function chunkRange(index: number, chunkSize: number, size: number): { start: number; end: number } {
  const start = index * chunkSize;
  return { start, end: Math.min(start + chunkSize, size) };
}

/** The hex digest of chunk `index` in the list. */
export function chunkDigest(chunks: Chunks, index: number): string {
  return chunks.sha256.slice(index * HEX_PER_CHUNK, (index + 1) * HEX_PER_CHUNK);
}

/**
 * Why an artifact's chunk list cannot be its own (4.11 consistency), or null: an empty artifact has none; otherwise
 * the list holds exactly `ceil(size / chunks.size)` digests, no more, no fewer.
 */
export function chunkListProblem(a: { name: string; version: string; size: number; chunks?: Chunks }): string | null {
  if (!a.chunks) return null;
  const what = `${a.name} ${a.version}`;
  if (a.size === 0) return `${what} is empty and cannot carry a chunk list`;
  const count = chunkCount(a.size, a.chunks.size);
  if (count > CHUNKS_MAX) {
    return `${what} would need ${count} chunks of ${a.chunks.size} bytes; at most ${CHUNKS_MAX} are allowed`;
  }
  const listed = a.chunks.sha256.length / HEX_PER_CHUNK;
  if (listed !== count) {
    return `the chunk list of ${what} holds ${Number.isInteger(listed) ? listed : `${a.chunks.sha256.length} hex characters, not a whole number of`} digests; ${a.size} bytes in chunks of ${a.chunks.size} make ${count}`;
  }
  return null;
}

/**
 * The reference writer's chunk size for an artifact of `size` bytes: 4 MiB, doubled until it needs at most 128
 * chunks; null when the artifact carries no list (it is empty, or larger than 1 GiB × 128).
 */
export function writerChunkSize(size: number): number | null {
  if (size === 0) return null;
  let chunk = WRITER_CHUNK_SIZE;
  while (chunkCount(size, chunk) > WRITER_CHUNKS_MAX) {
    if (chunk >= CHUNK_SIZE_MAX) return null;
    chunk *= 2;
  }
  return chunk;
}
