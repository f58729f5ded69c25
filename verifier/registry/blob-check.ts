/**
 * The registry's part of `ecluse store check`: every recorded blob is in the store with its size and (unless quick)
 * its digest; a blob file no row records (left by a crash between a rename and its commit) is an orphan, removed by
 * `--repair` under the promotion's write lock. A recorded blob is never removed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../db.js';
import { blobFile } from './blob-store.js';
import { recordedBlobs } from './images.js';

export interface BlobProblem {
  kind: 'missing-file' | 'size-mismatch' | 'digest-mismatch' | 'orphan-file';
  /** The blob's digest (recorded blobs). */
  image?: string;
  path: string;
  detail: string;
  repaired: boolean;
}

async function sha256Of(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** Recorded blobs that are missing, of another size or (not quick) another digest. */
export async function checkRecordedBlobs(
  db: Db,
  blobsDir: string,
  quick: boolean,
): Promise<{ problems: BlobProblem[]; checkedBytes: number }> {
  const problems: BlobProblem[] = [];
  let checkedBytes = 0;
  for (const b of recordedBlobs(db)) {
    const file = blobFile(blobsDir, b.digest);
    const st = await fs.promises.stat(file).catch(() => null);
    const problem = (kind: BlobProblem['kind'], detail: string) =>
      problems.push({ kind, image: b.digest, path: file, detail, repaired: false });
    if (!st) {
      problem('missing-file', 'the registry records a blob that is not there');
      continue;
    }
    if (st.size !== b.size) {
      problem('size-mismatch', `${st.size} bytes, the registry says ${b.size}`);
      continue;
    }
    if (quick) continue;
    checkedBytes += st.size;
    const got = await sha256Of(file);
    if (got !== b.digest) problem('digest-mismatch', `its bytes hash to ${got}`);
  }
  return { problems, checkedBytes };
}

/** Blob files no row records; removed when `repair` (call under the promotion's write lock). */
export function orphanBlobs(db: Db, blobsDir: string, repair: boolean): BlobProblem[] {
  if (!fs.existsSync(blobsDir)) return [];
  const recorded = new Set(recordedBlobs(db).map((b) => b.digest.slice('sha256:'.length)));
  const problems: BlobProblem[] = [];
  for (const name of fs.readdirSync(blobsDir)) {
    if (recorded.has(name)) continue;
    const file = path.join(blobsDir, name);
    if (repair) fs.rmSync(file, { recursive: true, force: true });
    problems.push({ kind: 'orphan-file', path: file, detail: 'no registry row records this blob', repaired: repair });
  }
  return problems;
}
