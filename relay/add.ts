/**
 * `ecluse relay add`: copies a file into the export station's content-addressed store, computing sha256, sha512 and
 * md5 in the same read (one hashing thread each, so the copy goes at the pace of the slowest digest, not their sum),
 * and the chunk list an export signs (docs/FORMAT.md 4.11) in a fourth thread, and records it in the catalog. The
 * list, made from the same bytes as the catalog's sha256, is kept as checked (relay/checked-chunk-lists.ts): the
 * first export of the image checks its bytes against it instead of hashing them whole once more. md5 and sha512
 * travel signed in the statement (docs/FORMAT.md 4.8): the import station verifies sha256 and takes them as attested.
 * The same name and version twice is refused unless the bytes are the same (then it is a no-op).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { EcluseError } from '../sneakernet/errors.js';
import { assertReadableFile } from '../sneakernet/input-file.js';
import { HashPool, type Digests } from '../sneakernet/digests.js';
import { ChunkHashing } from '../sneakernet/chunk-hashing.js';
import { chunkCount, writerChunkSize, type Chunks } from '../sneakernet/chunk-list.js';
import { keepCheckedList } from './checked-chunk-lists.js';
import { syncDir, Writeback, writeAll } from '../sneakernet/durable.js';
import { alignedSharedMemory, openDirect, readUpTo, roundUp } from '../sneakernet/direct-io.js';
import { vmImageArtifactSchema, CONTAINER_FORMATS, DISK_FORMATS } from '../sneakernet/statement.js';
import { blobPath, type ArtifactRow, type RelayHome } from './catalog.js';
import { isoSeconds } from '../sneakernet/statement.js';
import { artifactNamed, artifactWithBytes, insertArtifact } from './artifacts.js';
import { insertPackage } from './packages.js';
import type { PackageFields } from '../sneakernet/ecluse-package.js';

export interface AddOptions {
  file: string;
  name: string;
  version: string;
  diskFormat: string;
  containerFormat: string;
  properties: Record<string, string>;
  vendor: string | null;
  onProgress?: (bytes: number, total: number) => void;
}

export interface AddResult {
  artifact: ArtifactRow;
  created: boolean;
}

export function validate(
  o: Pick<AddOptions, 'name' | 'version' | 'diskFormat' | 'containerFormat' | 'properties'>,
): void {
  const probe = vmImageArtifactSchema.pick({
    name: true,
    version: true,
    diskFormat: true,
    containerFormat: true,
    properties: true,
  });
  const r = probe.safeParse({
    name: o.name,
    version: o.version,
    diskFormat: o.diskFormat,
    containerFormat: o.containerFormat,
    properties: o.properties,
  });
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = issue?.path.join('.') ?? '';
    const hint =
      field === 'diskFormat'
        ? ` (one of ${DISK_FORMATS.join(', ')})`
        : field === 'containerFormat'
          ? ` (one of ${CONTAINER_FORMATS.join(', ')})`
          : '';
    throw new EcluseError('E_USAGE', `invalid ${field || 'input'}: ${issue?.message ?? 'invalid'}${hint}`);
  }
}

export async function addArtifact(home: RelayHome, o: AddOptions): Promise<AddResult> {
  validate(o);
  const st = await assertReadableFile(o.file, 'image file');
  const tmp = path.join(home.blobs, `.incoming-${randomBytes(8).toString('hex')}`);
  let copied: Copied;
  try {
    copied = await copyHashing(o.file, tmp, (n) => o.onProgress?.(n, st.size));
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw new EcluseError('E_IO', `copying ${o.file} failed: ${(e as Error).message}`, {}, { cause: e });
  }
  const { size, digests, chunks } = copied;
  return recordBlob(home, {
    tmp,
    size,
    chunks,
    sha256: digests.sha256,
    sha512: digests.sha512,
    md5: digests.md5,
    name: o.name,
    version: o.version,
    diskFormat: o.diskFormat,
    containerFormat: o.containerFormat,
    properties: o.properties,
    vendor: o.vendor,
    source: path.basename(o.file),
  });
}

export interface BlobRecord {
  /** A complete, fsynced file under `home.blobs` (same filesystem as the store): renamed in, or removed. */
  tmp: string;
  size: number;
  sha256: string;
  sha512: string;
  /** Glance's `checksum` (format 4.8). */
  md5: string;
  /**
   * The writer's chunk list of these bytes (FORMAT.md 4.11), computed in the same pass as `sha256`: kept as checked
   * (relay/checked-chunk-lists.ts). Absent: the first export lists and checks the image itself.
   */
  chunks?: Chunks | null;
  name: string;
  version: string;
  diskFormat: string;
  containerFormat: string;
  properties: Record<string, string>;
  vendor: string | null;
  source: string;
  /** Vendor evidence (JSON text, docs/FORMAT.md 4.5) and the feed it came from. */
  evidence?: string | null;
  feed?: string | null;
  /** écluse's own package (FORMAT.md 4.10): its type is `ecluse-package` and this is its `packages` row. */
  package?: PackageFields;
}

/**
 * Enters a hashed file into the catalog: the same name and version with the same bytes is a no-op, with other bytes a
 * refusal; bytes already present under another name are refused (the store is content-addressed).
 */
export async function recordBlob(home: RelayHome, r: BlobRecord): Promise<AddResult> {
  const existing = artifactNamed(home.db, r.name, r.version);
  if (existing) {
    await fs.promises.rm(r.tmp, { force: true });
    if (existing.sha256 === r.sha256) return { artifact: existing, created: false };
    throw new EcluseError(
      'E_INPUT',
      `${r.name} ${r.version} is already in the catalog with other bytes (sha256 ${existing.sha256.slice(0, 12)}…); give the new file a new version`,
    );
  }
  const same = artifactWithBytes(home.db, r.sha256);
  if (same) {
    await fs.promises.rm(r.tmp, { force: true });
    throw new EcluseError('E_INPUT', `these bytes are already in the catalog as ${same.name} ${same.version}`);
  }
  const stored = blobPath(home, r.sha256);
  await fs.promises.rename(r.tmp, stored);
  await syncDir(path.dirname(stored)); // the name is on the disk before the catalog row that points to it
  const pkg = r.package;
  const row = home.db.transaction(() => {
    const inserted = insertArtifact(home.db, {
      ...r,
      type: pkg ? 'ecluse-package' : 'vm-image',
      addedAt: isoSeconds(),
      evidence: r.evidence ?? null,
      feed: r.feed ?? null,
    });
    if (pkg) insertPackage(home.db, inserted.id, pkg);
    if (r.chunks) keepCheckedList(home.db, r.sha256, r.chunks, inserted.added_at);
    return inserted;
  })();
  return { artifact: row, created: true };
}

/**
 * 1 MiB reads and writes. Both go around the page cache (O_DIRECT, sneakernet/direct-io.ts) where the file systems
 * take it: the kernel copies nothing, the hashing threads hash the bytes where they were read, and the copy is on
 * the disk as it goes. Where either side refuses O_DIRECT, that side goes through the page cache as before (the
 * copy flushed in the background, sneakernet/durable.ts `Writeback`).
 */
const COPY_CHUNK = 1024 * 1024;
/** Buffers: two being read ahead, the others being written and hashed. */
const COPY_BUFFERS = 6;
const READS_AHEAD = 2;

export interface Copied {
  size: number;
  digests: Digests;
  /** The writer's chunk list of the copied bytes; null for an empty file or one too large to list. */
  chunks: Chunks | null;
}

/**
 * Copies `from` to a new private file `to` (fsynced) while the three digests and the chunk list are computed in
 * their worker threads: reads run ahead of the writing and the hashing of the chunks before them; a buffer is read
 * into again once its bytes are written and hashed. Memory: the buffers; the hashing threads read them in place.
 */
export async function copyHashing(from: string, to: string, onProgress: (bytes: number) => void): Promise<Copied> {
  const { memory, aligned } = alignedSharedMemory(COPY_CHUNK * COPY_BUFFERS);
  const buffers = Array.from({ length: COPY_BUFFERS }, (_, i) => Buffer.from(memory, i * COPY_CHUNK, COPY_CHUNK));
  const inUse: Array<Promise<unknown>> = buffers.map(() => Promise.resolve());
  // Opened before the hashing threads start: a file gone since it was checked leaves nothing running.
  const src = await openDirect(from, fs.constants.O_RDONLY, undefined, aligned);
  // The chunk size is the writer's for the file's size now: a file whose size changes while copied is refused below.
  const sizeNow = await src.handle.stat().then(
    (st) => st.size,
    async (e: unknown) => {
      await src.handle.close();
      throw e;
    },
  );
  const chunkSize = writerChunkSize(sizeNow);
  const pool = new HashPool(undefined, { shared: [memory] });
  const chunking = chunkSize === null ? null : new ChunkHashing(1, { shared: [memory] });
  const listed: string[] = [];
  const chunkStream = chunking?.begin(chunkSize ?? Infinity, (i, hex) => (listed[i] = hex)) ?? null;
  let dst: { handle: fs.promises.FileHandle; direct: boolean } | null = null;
  let writeback: Writeback | null = null;
  const ahead: Array<{ index: number; buffer: Buffer; read: Promise<number> }> = [];
  let syncing: Promise<void> | null = null;
  const hasher = pool.begin();
  try {
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;
    dst = await openDirect(to, flags, 0o600, aligned);
    const out = dst;
    if (!out.direct) writeback = new Writeback(out.handle.fd);
    let size = 0;
    let next = 0;
    let started = 0;
    for (;;) {
      while (ahead.length < READS_AHEAD) {
        const index = started % COPY_BUFFERS;
        const buffer = buffers[index] as Buffer;
        await inUse[index];
        const read = readUpTo(src.handle, buffer, buffer.length, next, src.direct);
        read.catch(() => undefined); // awaited below, or settled before the files are closed
        ahead.push({ index, buffer, read });
        next += COPY_CHUNK;
        started++;
      }
      const oldest = ahead.shift() as { index: number; buffer: Buffer; read: Promise<number> };
      const n = await oldest.read;
      if (n === 0) break;
      const chunk = oldest.buffer.subarray(0, n);
      // A direct write is a whole number of blocks: the last one padded with zeros, the file cut back below.
      const length = out.direct ? roundUp(n) : n;
      oldest.buffer.fill(0, n, length);
      const at = size;
      const end = size + n;
      const using = Promise.all([
        writeAll(out.handle, oldest.buffer.subarray(0, length), at).then(() => writeback?.wrote(end)),
        hasher.update(chunk),
        chunkStream?.update(chunk),
      ]);
      using.catch(() => undefined); // awaited before the buffer is reused, or below
      inUse[oldest.index] = using;
      size = end;
      onProgress(size);
      if (n < COPY_CHUNK) break;
    }
    await Promise.all(inUse);
    // A short read ends the copy: it must have been the end of the file as it is now (not a file still growing).
    const now = (await src.handle.stat()).size;
    if (now !== size) {
      throw new EcluseError('E_IO', `${from} changed while it was copied (${size} bytes read, ${now} now)`);
    }
    if (out.direct) await out.handle.truncate(size);
    // The last pages go to the disk while the hashing threads finish.
    syncing = (writeback?.settle() ?? Promise.resolve()).then(() => out.handle.sync());
    const [, digests] = await Promise.all([syncing, hasher.digest(), chunkStream?.finish()]);
    const complete = chunkSize !== null && listed.filter(Boolean).length === chunkCount(size, chunkSize);
    return { size, digests, chunks: complete ? { size: chunkSize, sha256: listed.join('') } : null };
  } finally {
    // On a failure, nothing may still be reading, writing or syncing behind the files being closed.
    await Promise.allSettled(ahead.map((a) => a.read));
    await Promise.allSettled(inUse);
    await (syncing ?? writeback?.settle())?.catch(() => undefined);
    await dst?.handle.close();
    await src.handle.close();
    await pool.close();
    await chunking?.close();
  }
}
