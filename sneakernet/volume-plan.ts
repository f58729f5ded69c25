/**
 * Splits artifacts over tar volumes so that no volume exceeds the media size (a delta artifact counts only the bytes
 * it carries). A ustar entry costs a 512-byte header
 * plus its data padded to 512; a volume ends with two zero blocks (1024 bytes). Artifacts are laid out in order; one
 * that does not fit in what is left of a volume continues in the next as another piece.
 */
import { EcluseError } from './errors.js';
import { LIMITS } from './limits.js';
import { entryPath, volumeName, type Delta } from './statement.js';
import { transferSize } from './delta.js';

export const BLOCK = 512;
export const END_OF_ARCHIVE = 2 * BLOCK;
/** Smallest media size accepted: room for the end of archive, a header and some data. */
export const MIN_VOLUME_BYTES = 64 * 1024;

export interface PlannedEntry {
  path: string;
  artifact: number;
  offset: number;
  size: number;
}

export interface PlannedVolume {
  name: string;
  entries: PlannedEntry[];
  /** Exact size of the tar file once written. */
  size: number;
}

const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

export function planVolumes(
  artifacts: ReadonlyArray<{ sha256: string; size: number; delta?: Delta | undefined }>,
  mediaBytes: number,
): PlannedVolume[] {
  if (!Number.isSafeInteger(mediaBytes) || mediaBytes < MIN_VOLUME_BYTES) {
    throw new EcluseError('E_USAGE', `the media size must be at least ${MIN_VOLUME_BYTES} bytes (64K)`);
  }
  const capacity = Math.min(mediaBytes, LIMITS.volumeBytes);
  type Piece = Omit<PlannedEntry, 'path'>;
  const volumes: Piece[][] = [[]];
  let used = END_OF_ARCHIVE;
  artifacts.forEach((a, index) => {
    let offset = 0;
    const carried = transferSize(a);
    do {
      // Data that fits after one more header, in whole blocks (the last piece's padding fits in the same blocks).
      const dataRoom = () => Math.floor((capacity - used - BLOCK) / BLOCK) * BLOCK;
      const remaining = carried - offset;
      if (capacity - used < BLOCK || (remaining > 0 && dataRoom() <= 0)) {
        volumes.push([]);
        used = END_OF_ARCHIVE;
      }
      const size = Math.min(remaining, dataRoom());
      volumes[volumes.length - 1]?.push({ artifact: index, offset, size });
      used += BLOCK + padded(size);
      offset += size;
    } while (offset < carried);
  });
  if (volumes.length > LIMITS.volumes) {
    throw new EcluseError('E_USAGE', `the bundle would need ${volumes.length} volumes, more than ${LIMITS.volumes}`);
  }
  const piecesOf = artifacts.map((_, i) => volumes.flat().filter((p) => p.artifact === i).length);
  const pieceNumber = artifacts.map(() => 0);
  return volumes.map((pieces, vi) => ({
    name: volumeName(vi),
    entries: pieces.map((p) => {
      const n = (pieceNumber[p.artifact] = (pieceNumber[p.artifact] ?? 0) + 1);
      const artifact = artifacts[p.artifact];
      if (!artifact)
        throw new EcluseError(
          'E_INTERNAL',
          `the volume plan names artifact ${p.artifact}, which is not in the bundle (a bug: report it with this line)`,
        );
      return { ...p, path: entryPath(artifact.sha256, n, piecesOf[p.artifact] ?? 1) };
    }),
    size: END_OF_ARCHIVE + pieces.reduce((sum, p) => sum + BLOCK + padded(p.size), 0),
  }));
}

/** Parses a media size such as `4G`, `700M`, `64K`, `1048576` (powers of 1024). */
export function parseByteSize(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|B)?$/i.exec(text.trim());
  if (!m || !m[1]) throw new EcluseError('E_USAGE', `not a size: "${text}" (examples: 4G, 700M, 64K)`);
  const unit = (m[2] ?? 'B').charAt(0).toUpperCase();
  const power = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit] ?? 0;
  const bytes = Math.floor(Number(m[1]) * 1024 ** power);
  if (!Number.isSafeInteger(bytes)) throw new EcluseError('E_USAGE', `size out of range: "${text}"`);
  return bytes;
}
