/**
 * A volume's bytes checked without hashing the volume (docs/FORMAT.md 4.11, step 7i for a volume covered by chunk
 * lists). A volume is ustar headers, entry data, zero padding and two zero blocks (5.1); every header is determined by
 * the signed statement (5.3: path, size, `created`, fixed fields). When every entry of a volume belongs to an artifact
 * with a signed chunk list, its data bytes are proven by the chunks (7h); what remains is proven here, byte for byte:
 * each header equals the one regenerated from the statement, every padding byte and the end of archive are zero. So
 * every byte of the file is checked against the signers' statement, and the volume's own SHA-256 need not be
 * computed: one SHA-256 pass over the media instead of two.
 *
 * It stands in for the volume's hash in the volume reader (same `update`/`hex`): `hex()` gives the signed digest when
 * every byte outside the data was canonical. When one was not, it computes the file's real SHA-256 (reading the volume
 * again: only on the way to a refusal), so the reader decides exactly as 7i always did: E_DIGEST if the file is not the
 * signed volume, the structural code if the signed volume itself is malformed. A writer that lists chunks for every
 * artifact of a volume writes its headers canonically (4.11), so a canonical volume with proven data is the signed one.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Artifact, Volume } from './statement.js';

const BLOCK = 512;
/** The writer's mtime: `created`, kept below 2038 (tar-stream writes 32-bit seconds; relay/volume-writer.ts). */
const MTIME_LIMIT = Date.UTC(2038, 0, 1);

function octal(value: number, digits: number): string {
  return value.toString(8).padStart(digits, '0') + ' ';
}

/** The ustar header the reference writer makes for an entry (FORMAT 5.3), byte for byte. */
export function canonicalHeader(entryPath: string, size: number, created: string): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(entryPath, 0, 100, 'ascii');
  h.write(octal(0o644, 6), 100, 'ascii');
  h.write(octal(0, 6), 108, 'ascii');
  h.write(octal(0, 6), 116, 'ascii');
  if (size >= 2 ** 33) {
    h[124] = 0x80;
    let n = size;
    for (let i = 11; i > 0; i--) {
      h[124 + i] = n % 256;
      n = Math.floor(n / 256);
    }
  } else {
    h.write(octal(size, 11), 124, 'ascii');
  }
  const seconds = Math.floor(Math.min(Date.parse(created), MTIME_LIMIT) / 1000);
  h.write(octal(seconds, 11), 136, 'ascii');
  h[156] = 0x30; // typeflag '0'
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(octal(0, 6), 329, 'ascii');
  h.write(octal(0, 6), 337, 'ascii');
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += h[i] as number;
  h.write(octal(sum, 6), 148, 'ascii');
  return h;
}

/** Whether every entry of `volume` belongs to an artifact with a signed chunk list (its data bytes are chunk-proven). */
export function coveredByChunks(volume: Volume, artifacts: readonly Artifact[]): boolean {
  return volume.entries.every((e) => artifacts[e.artifact]?.chunks !== undefined);
}

/** A region of the volume whose bytes are fixed by the statement: a header or zeros. */
interface Fixed {
  start: number;
  end: number;
  what: string;
  /** The expected bytes (a header); null: zeros. */
  bytes: Buffer | null;
}

export class CanonicalLayoutCheck {
  private read = 0;
  private readonly regions: Array<Omit<Fixed, 'bytes'> & { header?: { path: string; size: number } }> = [];
  private next = 0;
  private current: Fixed | null = null;
  private mismatch: { at: number; what: string } | null = null;

  /** `file`: the volume on the media, hashed only if a byte outside the data is not canonical. */
  constructor(
    private readonly volume: Volume,
    private readonly created: string,
    private readonly file: string,
  ) {
    let at = 0;
    volume.entries.forEach((e, j) => {
      this.regions.push({ start: at, end: at + BLOCK, what: `the tar header of entry ${j + 1}`, header: e });
      const data = at + BLOCK;
      const padded = data + Math.ceil(e.size / BLOCK) * BLOCK;
      if (padded > data + e.size) {
        this.regions.push({ start: data + e.size, end: padded, what: `the padding after entry ${j + 1}` });
      }
      at = padded;
    });
    this.regions.push({ start: at, end: at + 2 * BLOCK, what: 'the end-of-archive blocks' });
  }

  update(chunk: Buffer): void {
    const from = this.read;
    const to = from + chunk.length;
    this.read = to;
    while (this.mismatch === null) {
      const r = this.region();
      if (!r || r.start >= to) return;
      const lo = Math.max(r.start, from);
      const hi = Math.min(r.end, to);
      for (let x = lo; x < hi; x++) {
        const want = r.bytes ? (r.bytes[x - r.start] as number) : 0;
        if (chunk[x - from] !== want) {
          this.mismatch = { at: x, what: r.what };
          return;
        }
      }
      if (r.end > to) return;
      this.current = null;
      this.next++;
    }
  }

  /** The first byte outside the data that is not the canonical one, if any (for the record and tests). */
  get firstNonCanonical(): { at: number; what: string } | null {
    return this.mismatch;
  }

  /** The signed digest when every byte outside the data was canonical; else the file's SHA-256, computed now. */
  async hex(): Promise<string> {
    if (this.mismatch === null && this.read === this.volume.size) return this.volume.sha256;
    return fileSha256(this.file);
  }

  private region(): Fixed | null {
    if (this.current) return this.current;
    const r = this.regions[this.next];
    if (!r) return null;
    this.current = {
      start: r.start,
      end: r.end,
      what: r.what,
      bytes: r.header ? canonicalHeader(r.header.path, r.header.size, this.created) : null,
    };
    return this.current;
  }
}

/**
 * The SHA-256 of a volume file, read again now: only on the way to a refusal, to say which volume the operator must
 * write again (never followed through a symbolic link, never blocking on a FIFO).
 */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  const fd = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    await pipeline(fd.createReadStream({ autoClose: false, highWaterMark: 1024 * 1024 }), hash);
  } finally {
    await fd.close();
  }
  return hash.digest('hex');
}
