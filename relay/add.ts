/**
 * `ecluse relay add`: copies a file into the export station's content-addressed store, computing sha256, sha512 and
 * md5 in the same read (one hashing thread each, so the copy goes at the pace of the slowest digest, not their sum),
 * and records it in the catalog. md5 and sha512 travel signed in the statement (docs/FORMAT.md 4.8): the import
 * station verifies sha256 and takes them as attested. The same name and version twice is refused unless the bytes are the
 * same (then it is a no-op).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { EcluseError } from '../sneakernet/errors.js';
import { assertReadableFile } from '../sneakernet/input-file.js';
import { HashPool, type Digests } from '../sneakernet/digests.js';
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
  let copied: { size: number; digests: Digests };
  try {
    copied = await copyHashing(o.file, tmp, (n) => o.onProgress?.(n, st.size));
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw new EcluseError('E_IO', `copying ${o.file} failed: ${(e as Error).message}`, {}, { cause: e });
  }
  const { size, digests } = copied;
  return recordBlob(home, {
    tmp,
    size,
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
  await fs.promises.rename(r.tmp, blobPath(home, r.sha256));
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
    return inserted;
  })();
  return { artifact: row, created: true };
}

const COPY_CHUNK = 4 * 1024 * 1024;

/**
 * Copies `from` to a new private file `to` (fsynced) while the three digests are computed in their worker threads: the
 * next read overlaps the write and the hashing of the current chunk. Memory: two chunks and the hash ring.
 */
export async function copyHashing(
  from: string,
  to: string,
  onProgress: (bytes: number) => void,
): Promise<{ size: number; digests: Digests }> {
  const pool = new HashPool();
  const src = await fs.promises.open(from, 'r');
  let dst: fs.promises.FileHandle | null = null;
  const hasher = pool.begin();
  try {
    dst = await fs.promises.open(to, 'wx', 0o600);
    const buffers = [Buffer.allocUnsafe(COPY_CHUNK), Buffer.allocUnsafe(COPY_CHUNK)];
    let size = 0;
    let which = 0;
    let reading = src.read(buffers[0] as Buffer, 0, COPY_CHUNK, 0);
    for (;;) {
      const { bytesRead, buffer } = await reading;
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      which ^= 1;
      reading = src.read(buffers[which] as Buffer, 0, COPY_CHUNK, size + bytesRead);
      const write = dst.write(chunk, 0, bytesRead, size);
      await Promise.all([write, hasher.update(chunk)]);
      size += bytesRead;
      onProgress(size);
    }
    await dst.sync();
    return { size, digests: await hasher.digest() };
  } finally {
    await dst?.close();
    await src.close();
    await pool.close();
  }
}
