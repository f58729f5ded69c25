/**
 * Writes one planned tar volume with tar-stream: each entry's bytes are read from the artifact's source file
 * (a byte range), the volume is hashed (sha256) as it is written, and the file is fsynced before it counts as written.
 * Headers are deterministic (mode 0644, uid/gid 0, mtime = the bundle's creation time) so the same plan and inputs
 * give the same bytes.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { EcluseError } from './errors.js';
import type { PlannedEntry, PlannedVolume } from './volume-plan.js';
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

/**
 * Dirty pages are handed to the disk every this many bytes (fdatasync in the background, one at a time), so the
 * writeback overlaps the copying and the final fsync has little left to wait for; without it, a machine with much
 * memory holds the whole volume dirty until that fsync.
 */
const SYNC_EVERY = 64 * 1024 * 1024;

const CHUNK = 1024 * 1024;

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

async function* readRanges(
  ranges: Array<{ file: string } & Segment>,
  seen?: (chunk: Buffer) => Promise<void>,
): AsyncGenerator<Buffer> {
  for (const r of ranges) {
    const input = fs.createReadStream(r.file, { start: r.offset, end: r.offset + r.size - 1, highWaterMark: CHUNK });
    for await (const chunk of input) {
      if (seen) await seen(chunk as Buffer);
      yield chunk as Buffer;
    }
  }
}

function rangesOf(source: VolumeSource, offset: number, size: number): Array<{ file: string } & Segment> {
  if ('parts' in source) return partRanges(source, offset, size);
  return fileRanges(source, offset, size).map((r) => ({ file: source.file, ...r }));
}

function localHasher(): VolumeHasher {
  const hash = createHash('sha256');
  return { update: (chunk) => void hash.update(chunk), digest: () => Promise.resolve(hash.digest('hex')) };
}

export async function writeVolume(
  plan: PlannedVolume,
  sources: ReadonlyArray<VolumeSource>,
  target: string,
  mtime: Date,
  options: WriteVolumeOptions | WriteProgress = {},
): Promise<WrittenVolume> {
  const o = typeof options === 'function' ? { onProgress: options } : options;
  const { onProgress, observer } = o;
  // ustar's 12-byte mtime field holds 2^33 - 1 seconds, but tar-stream truncates to 32 bits: stay below 2038.
  const headerTime = new Date(Math.min(mtime.getTime(), Date.UTC(2038, 0, 1)));
  const pack = tar.pack();
  const hash = o.hasher ?? localHasher();
  let size = 0;
  const out = fs.createWriteStream(target, { flags: 'wx', mode: 0o644 });
  // The background fdatasync in flight, if any (an object: it is set inside the stream's callbacks).
  const flushing: { syncing: Promise<void> | null } = { syncing: null };
  let synced = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      size += chunk.length;
      onProgress?.(chunk.length);
      const fd = (out as unknown as { fd: number | null }).fd; // set once the file is open
      if (flushing.syncing === null && size - synced >= SYNC_EVERY && typeof fd === 'number') {
        synced = size;
        flushing.syncing = new Promise<void>((resolve) => fs.fdatasync(fd, () => resolve())).then(() => {
          flushing.syncing = null;
        });
      }
      const hashed = hash.update(chunk);
      if (hashed) hashed.then(() => cb(null, chunk), cb);
      else cb(null, chunk);
    },
    // No fdatasync may be in flight when the file is closed behind this stream.
    flush(cb) {
      void (flushing.syncing ?? Promise.resolve()).then(() => cb());
    },
  });
  const written = pipeline(pack, meter, out);

  const feed = async () => {
    for (const entry of plan.entries) {
      const source = sources[entry.artifact];
      if (!source) {
        throw new EcluseError(
          'E_INTERNAL',
          `the volume plan names artifact ${entry.artifact}, which has no source (a bug: report it with this line)`,
        );
      }
      await observer?.start(entry);
      await new Promise<void>((resolve, reject) => {
        const header = {
          name: entry.path,
          size: entry.size,
          mode: 0o644,
          mtime: headerTime,
          type: 'file' as const,
          uid: 0,
          gid: 0,
        };
        const done = (err?: Error | null) => (err ? reject(err) : resolve());
        if (entry.size === 0) {
          pack.entry(header, Buffer.alloc(0), done);
          return;
        }
        const sink = pack.entry(header, done);
        const seen = observer ? (chunk: Buffer) => observer.bytes(entry, chunk) : undefined;
        pipeline(Readable.from(readRanges(rangesOf(source, entry.offset, entry.size), seen)), sink).catch(reject);
      });
      await observer?.end(entry);
    }
    pack.finalize();
  };
  try {
    await Promise.all([feed(), written]);
    await flushing.syncing;
    const fd = await fs.promises.open(target, 'r+');
    try {
      await fd.sync();
    } finally {
      await fd.close();
    }
  } catch (e) {
    pack.destroy();
    await flushing.syncing;
    if (e instanceof EcluseError && e.code !== 'E_IO') throw e;
    throw new EcluseError(
      'E_IO',
      `writing ${plan.name} to ${target} failed: ${(e as Error).message}`,
      {},
      { cause: e },
    );
  }
  if (size !== plan.size) {
    throw new EcluseError('E_INTERNAL', `${plan.name} came out ${size} bytes, planned ${plan.size}`);
  }
  return { name: plan.name, size, sha256: await hash.digest() };
}
