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
import { alignedSharedMemory, DIRECT_ALIGN, openDirect, readUpTo, roundUp } from './direct-io.js';
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

/** Source reads: 1 MiB each, several in flight (direct reads get no read-ahead from the kernel). */
const READ_BYTES = 1024 * 1024;
const READ_BUFFERS = 4;

/** The aligned buffers a volume's sources are read into (made once, reused by every volume). */
class SourceBuffers {
  readonly views: Buffer[];
  readonly aligned: boolean;

  constructor() {
    const { memory, aligned } = alignedSharedMemory(READ_BYTES * READ_BUFFERS);
    this.aligned = aligned;
    this.views = Array.from({ length: READ_BUFFERS }, (_, i) => Buffer.from(memory, i * READ_BYTES, READ_BYTES));
  }
}

/** Source buffers no volume is being written from now (as `idleBlocks`). */
const idleSources: SourceBuffers[] = [];

/**
 * Reads `ranges` in 1 MiB reads, up to three ahead of the one being used, and hands each read's bytes to `use`, which
 * must be done with them when its promise resolves. The stored files are read around the page cache (O_DIRECT, from
 * the block boundary at or before each range: the bytes before the range are skipped) where their file system takes
 * it, so the kernel copies nothing; elsewhere through it. A file shorter than a range says is refused: the stored copy
 * is not the one the plan was made from.
 */
async function copyRanges(
  ranges: Array<{ file: string } & Segment>,
  buffers: SourceBuffers,
  use: (chunk: Buffer) => Promise<void>,
): Promise<void> {
  let turn = 0;
  for (const r of ranges) {
    if (r.size === 0) continue;
    const src = await openDirect(r.file, fs.constants.O_RDONLY, undefined, buffers.aligned);
    const end = r.offset + r.size;
    const first = src.direct ? r.offset - (r.offset % DIRECT_ALIGN) : r.offset;
    // Reads in flight, oldest first; one buffer is always left for the bytes being used.
    const ahead: Array<{ at: number; length: number; buffer: Buffer; read: Promise<number> }> = [];
    let next = first;
    const readNext = () => {
      const at = next;
      const length = Math.min(READ_BYTES, src.direct ? roundUp(end - at) : end - at);
      const buffer = buffers.views[turn] as Buffer;
      turn = (turn + 1) % buffers.views.length;
      const read = readUpTo(src.handle, buffer, length, at, src.direct);
      read.catch(() => undefined); // awaited below, or settled before the file is closed
      ahead.push({ at, length, buffer, read });
      next += length;
    };
    try {
      while (next < end && ahead.length < buffers.views.length - 1) readNext();
      while (ahead.length > 0) {
        const { at, length, buffer, read } = ahead[0] as (typeof ahead)[number];
        const n = await read;
        ahead.shift();
        if (n < length && at + n < end) throw shorterThanPlanned(r, Math.max(0, at + n - r.offset));
        if (next < end) readNext();
        await use(buffer.subarray(Math.max(at, r.offset) - at, Math.min(at + n, end) - at));
      }
    } finally {
      await Promise.allSettled(ahead.map((a) => a.read));
      await src.handle.close();
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
 * The volume is hashed as it is written and fsynced before it counts as written. Memory: four 1 MiB read buffers and
 * the three 512 KiB blocks it is written through.
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
  const reads = idleSources.pop() ?? new SourceBuffers();
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
      await copyRanges(rangesOf(source, entry.offset, entry.size), reads, async (chunk) => {
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
    idleSources.push(reads);
  }
  if (out.size !== plan.size) {
    throw new EcluseError('E_INTERNAL', `${plan.name} came out ${out.size} bytes, planned ${plan.size}`);
  }
  return { name: plan.name, size: out.size, sha256: await hash.digest() };
}
