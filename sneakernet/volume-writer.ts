/**
 * Writes one planned tar volume: each entry's bytes are read from the artifact's source file (a byte range) into
 * reused buffers and written with positioned writes, the volume is hashed (sha256, in a thread when the caller lends
 * one) as it is written, dirty pages go to the device in the background, and the file is fsynced before it counts as
 * written. Headers are deterministic (sneakernet/tar-header.ts: mode 0644, uid/gid 0, mtime = the bundle's creation
 * time) so the same plan and inputs give the same bytes.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { DirectFile, WriteBlocks } from './direct-file.js';
import { checkId } from './check-ids.js';
import { EcluseError } from './errors.js';
import { TAR_BLOCK, encodeHeader } from './tar-header.js';
import { END_OF_ARCHIVE, type PlannedEntry, type PlannedVolume } from './volume-plan.js';
import type { Segment } from './delta.js';

export interface FileSource {
  /** Path of the file holding the artifact's bytes. */
  file: string;
  /**
   * For a delta artifact: the ranges of `file` that travel, in order (sneakernet/delta.ts `literalSegments`); entry
   * offsets then count within their concatenation. Absent: the whole file travels.
   */
  segments?: Segment[];
}

/** An artifact whose carried bytes are several files back to back (an OCI image's carried blobs, 4.9). */
export interface PartsSource {
  parts: ReadonlyArray<{ file: string; size: number }>;
}

export type VolumeSource = FileSource | PartsSource;

/** The (file, range) pieces that make bytes `[offset, offset+size)` of what a parts source carries. */
export function partRanges(source: PartsSource, offset: number, size: number): Array<{ file: string } & Segment> {
  const out: Array<{ file: string } & Segment> = [];
  let at = 0;
  for (const p of source.parts) {
    const from = Math.max(offset, at);
    const to = Math.min(offset + size, at + p.size);
    if (from < to) out.push({ file: p.file, offset: from - at, size: to - from });
    at += p.size;
    if (at >= offset + size) break;
  }
  return out;
}

export interface WrittenVolume {
  name: string;
  size: number;
  sha256: string;
}

export interface WriteProgress {
  (bytes: number): void;
}

/** Sees every entry's bytes as they are written (relay/artifact-check.ts hashes them); each call may make it wait. */
export interface EntryObserver {
  start(entry: PlannedEntry): Promise<void>;
  bytes(entry: PlannedEntry, chunk: Buffer): Promise<void>;
  end(entry: PlannedEntry): Promise<void>;
}

/** How the volume's SHA-256 is computed: in this thread, or handed to a hashing thread (sneakernet/digests.ts). */
export interface VolumeHasher {
  update(chunk: Buffer): Promise<void> | void;
  digest(): Promise<string>;
}

export interface WriteVolumeOptions {
  onProgress?: WriteProgress;
  observer?: EntryObserver;
  hasher?: VolumeHasher;
}

const CHUNK = 1024 * 1024;
const ZEROS = Buffer.alloc(END_OF_ARCHIVE);

/** The ranges of the source file that make bytes `[offset, offset+size)` of what the artifact carries. */
export function fileRanges(source: FileSource, offset: number, size: number): Segment[] {
  if (!source.segments) return [{ offset, size }];
  const out: Segment[] = [];
  let carried = 0;
  for (const seg of source.segments) {
    const from = Math.max(offset, carried);
    const to = Math.min(offset + size, carried + seg.size);
    if (from < to) out.push({ offset: seg.offset + (from - carried), size: to - from });
    carried += seg.size;
    if (carried >= offset + size) break;
  }
  return out;
}

function rangesOf(source: VolumeSource, offset: number, size: number): Array<{ file: string } & Segment> {
  if ('parts' in source) return partRanges(source, offset, size);
  return fileRanges(source, offset, size).map((r) => ({ file: source.file, ...r }));
}

function localHasher(): VolumeHasher {
  const hash = createHash('sha256');
  return { update: (chunk) => void hash.update(chunk), digest: () => Promise.resolve(hash.digest('hex')) };
}

/**
 * The volume file: every byte goes through `emit`, which counts, hashes and writes it. Written with direct I/O where
 * the medium's file system takes it (sneakernet/direct-file.ts), else through the page cache with an fdatasync
 * every 64 MiB, as before.
 */
class VolumeFile {
  size = 0;

  constructor(
    private readonly file: DirectFile,
    private readonly hash: VolumeHasher,
    private readonly onProgress?: WriteProgress,
  ) {}

  /** Resolves when `chunk` is copied to the file's blocks and hashed: the caller may then reuse its buffer. */
  async emit(chunk: Buffer): Promise<void> {
    this.size += chunk.length;
    await Promise.all([this.file.append(chunk), this.hash.update(chunk)]);
    this.onProgress?.(chunk.length);
  }

  /** Every byte is on the device (fsync); the file is closed. */
  durable(): Promise<void> {
    return this.file.finish();
  }
}

/** Aligned blocks no volume is being written through now (kept for the next volume: made once, not per volume). */
const idleBlocks: WriteBlocks[] = [];

/**
 * Reads `ranges` in chunks into two buffers taken in turn (the next read runs while the current chunk is written and
 * hashed) and hands each chunk to `use`, which must be done with it when its promise resolves. A file shorter than a
 * range says is refused: the stored copy is not the one the plan was made from.
 */
async function copyRanges(
  ranges: Array<{ file: string } & Segment>,
  use: (chunk: Buffer) => Promise<void>,
): Promise<void> {
  const buffers = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
  let turn = 0;
  for (const r of ranges) {
    const src = await fs.promises.open(r.file, 'r');
    try {
      const readAt = (done: number) => {
        const buffer = buffers[turn] as Buffer;
        turn ^= 1;
        return src.read(buffer, 0, Math.min(CHUNK, r.size - done), r.offset + done);
      };
      let done = 0;
      let reading = r.size > 0 ? readAt(0) : null;
      while (reading) {
        const { bytesRead, buffer } = await reading;
        if (bytesRead === 0) throw shorterThanPlanned(r, done);
        done += bytesRead;
        reading = done < r.size ? readAt(done) : null;
        try {
          await use(buffer.subarray(0, bytesRead));
        } catch (e) {
          await reading?.catch(() => undefined);
          throw e;
        }
      }
    } finally {
      await src.close();
    }
  }
}

function shorterThanPlanned(r: { file: string } & Segment, done: number): EcluseError {
  return new EcluseError(
    'E_DIGEST',
    `${r.file} ends at byte ${r.offset + done}, before the ${r.size} bytes from ${r.offset} that the export reads from it: the stored copy changed since it was added; nothing was kept: remove that artifact from the catalog (ecluse relay remove NAME@VERSION) and add it again`,
    { check: checkId('stored-artifact'), blob: r.file },
  );
}

/**
 * Writes `plan` to `target` (a new file): for each entry its ustar header, its bytes read from the artifact's source
 * (shown to `observer` first), zeros to the next 512-byte boundary; then the two zero blocks that end the archive.
 * The volume is hashed as it is written and fsynced before it counts as written. Memory: two 1 MiB read buffers and
 * the three 1 MiB blocks it is written through.
 */
export async function writeVolume(
  plan: PlannedVolume,
  sources: ReadonlyArray<VolumeSource>,
  target: string,
  mtime: Date,
  options: WriteVolumeOptions | WriteProgress = {},
): Promise<WrittenVolume> {
  const o = typeof options === 'function' ? { onProgress: options } : options;
  const { observer } = o;
  // ustar's 12-byte mtime field holds 2^33 - 1 seconds, but tar-stream truncated to 32 bits: stay below 2038.
  const headerTime = new Date(Math.min(mtime.getTime(), Date.UTC(2038, 0, 1)));
  const hash = o.hasher ?? localHasher();
  let out: VolumeFile | null = null;
  let file: DirectFile | null = null;
  let done = false;
  const blocks = idleBlocks.pop() ?? new WriteBlocks();
  try {
    file = await DirectFile.create(target, blocks, Infinity, 0o644);
    const volume = new VolumeFile(file, hash, o.onProgress);
    out = volume;
    for (const entry of plan.entries) {
      const source = sources[entry.artifact];
      if (!source) {
        throw new EcluseError(
          'E_INTERNAL',
          `the volume plan names artifact ${entry.artifact}, which has no source (a bug: report it with this line)`,
        );
      }
      await observer?.start(entry);
      await volume.emit(encodeHeader({ name: entry.path, size: entry.size, mtime: headerTime }));
      await copyRanges(rangesOf(source, entry.offset, entry.size), async (chunk) => {
        await Promise.all([observer?.bytes(entry, chunk), volume.emit(chunk)]);
      });
      const padding = (TAR_BLOCK - (entry.size % TAR_BLOCK)) % TAR_BLOCK;
      if (padding > 0) await volume.emit(ZEROS.subarray(0, padding));
      await observer?.end(entry);
    }
    await volume.emit(ZEROS);
    await volume.durable();
    done = true;
  } catch (e) {
    if (e instanceof EcluseError && e.code !== 'E_IO') throw e;
    throw new EcluseError(
      'E_IO',
      `writing ${plan.name} to ${target} failed: ${(e as Error).message}`,
      {},
      { cause: e },
    );
  } finally {
    // On a failure: nothing may still be writing the file when it is closed.
    if (!done) await file?.close();
    idleBlocks.push(blocks);
  }
  if (out.size !== plan.size) {
    throw new EcluseError('E_INTERNAL', `${plan.name} came out ${out.size} bytes, planned ${plan.size}`);
  }
  return { name: plan.name, size: out.size, sha256: await hash.digest() };
}
