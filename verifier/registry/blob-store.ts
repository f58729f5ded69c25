/**
 * The registry's blob store: `<home>/registry/blobs/sha256/<hex>`, the OCI image layout's blob path. A blob enters it
 * only by an atomic rename from the private staging area, after its digest was verified; a blob already there is the
 * same bytes (content-addressed), so promoting it again keeps the one in place and drops the staged copy.
 */
import fs from 'node:fs';
import path from 'node:path';
import { syncDirSync } from '../../sneakernet/durable.js';
import { EcluseError } from '../../sneakernet/errors.js';

const DIGEST = /^sha256:([a-f0-9]{64})$/;

/** The file of a blob, from a digest checked to be `sha256:<hex64>` (never a path the caller chose). */
export function blobFile(blobsDir: string, digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m?.[1]) {
    throw new EcluseError('E_INTERNAL', `${JSON.stringify(digest).slice(0, 80)} is not a sha256 digest`, {
      check: 'blob-digest',
    });
  }
  return path.join(blobsDir, m[1]);
}

export interface StagedBlob {
  digest: string;
  /** The verified file in the private staging area. */
  file: string;
}

/**
 * Moves verified blobs into the store (atomic renames, then one fsync of the folder). Returns the files this call
 * created, which are the only ones a failed promotion may remove: a blob already in the store belongs to images
 * accepted before.
 */
export function promoteBlobs(blobsDir: string, staged: readonly StagedBlob[]): string[] {
  fs.mkdirSync(blobsDir, { recursive: true, mode: 0o755 });
  const created: string[] = [];
  try {
    for (const b of staged) {
      const target = blobFile(blobsDir, b.digest);
      if (fs.existsSync(target)) {
        fs.rmSync(b.file, { force: true });
        continue;
      }
      fs.renameSync(b.file, target);
      created.push(target);
    }
    syncDirSync(blobsDir);
  } catch (e) {
    for (const f of created) fs.rmSync(f, { force: true });
    throw e;
  }
  return created;
}

/** Removes blob files a failed promotion created (never one that was there before it). */
export async function unpromoteBlobs(created: readonly string[]): Promise<void> {
  await Promise.all(created.map((f) => fs.promises.rm(f, { force: true })));
}
