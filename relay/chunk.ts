/** A content-defined chunk of an artifact, and how chunks are cut: what delta.ts produces and recipe.ts consumes. */

/** A run of bytes of an artifact, cut where its content says so, named by its SHA-256 (lowercase hex). */
export interface Chunk {
  offset: number;
  size: number;
  sha256: string;
}

/** FastCDC's minimum, average and maximum chunk sizes, in bytes. */
export interface ChunkParams {
  min: number;
  avg: number;
  max: number;
}
