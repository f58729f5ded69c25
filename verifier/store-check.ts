/**
 * `ecluse store check [--repair]`: compares the catalog, the image files and their hashes. Reports images whose file is
 * missing, of the wrong size or with other digests; files in the store no catalog row names (left by a crash between
 * a rename and its commit); and staging folders of imports whose process is gone (the next import removes those too).
 * `--repair` removes only the last two kinds (never an image the catalog names), under the same write lock promotion
 * takes. The registry's blobs are checked the same way (verifier/registry/blob-check.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { HashPool } from '../sneakernet/digests.js';
import { appendAudit } from './audit.js';
import { catalogFileNames, storedFiles } from './image-catalog.js';
import type { Site } from './site.js';
import { orphanStaging } from './staging-area.js';
import { checkRecordedBlobs, orphanBlobs } from './registry/blob-check.js';

export interface StoreProblem {
  kind: 'missing-file' | 'size-mismatch' | 'digest-mismatch' | 'orphan-file' | 'orphan-staging';
  image?: string;
  path: string;
  detail: string;
  repaired: boolean;
}

export interface StoreReport {
  images: number;
  checkedBytes: number;
  problems: StoreProblem[];
}

async function digestFile(pool: HashPool, file: string) {
  const hasher = pool.begin();
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 }))
    await hasher.update(chunk as Buffer);
  return hasher.digest();
}

export async function checkStore(site: Site, o: { repair: boolean; quick?: boolean }): Promise<StoreReport> {
  const rows = storedFiles(site.db);
  const problems: StoreProblem[] = [];
  let checkedBytes = 0;
  const pool = new HashPool();
  try {
    for (const r of rows) {
      if (!r.file) continue;
      const file = path.join(site.home.images, r.file);
      const st = await fs.promises.stat(file).catch(() => null);
      if (!st) {
        problems.push({
          kind: 'missing-file',
          image: r.id,
          path: file,
          detail: 'the catalog names a file that is not there',
          repaired: false,
        });
        continue;
      }
      if (st.size !== r.size) {
        problems.push({
          kind: 'size-mismatch',
          image: r.id,
          path: file,
          detail: `${st.size} bytes, the catalog says ${r.size}`,
          repaired: false,
        });
        continue;
      }
      if (o.quick) continue;
      const d = await digestFile(pool, file);
      checkedBytes += st.size;
      const bad = [
        r.sha256 && d.sha256 !== r.sha256 ? 'sha256' : null,
        r.os_hash_value && d.sha512 !== r.os_hash_value ? 'sha512' : null,
        r.checksum && d.md5 !== r.checksum ? 'md5' : null,
      ].filter(Boolean);
      if (bad.length)
        problems.push({
          kind: 'digest-mismatch',
          image: r.id,
          path: file,
          detail: `${bad.join(', ')} differ from the catalog`,
          repaired: false,
        });
    }
    const blobs = await checkRecordedBlobs(site.db, site.home.registryBlobs, o.quick === true);
    problems.push(...blobs.problems);
    checkedBytes += blobs.checkedBytes;
  } finally {
    await pool.close();
  }
  // Orphans are judged and removed under the promotion write lock.
  const db = site.db;
  db.transaction(() => {
    const named = catalogFileNames(db);
    for (const name of fs.existsSync(site.home.images) ? fs.readdirSync(site.home.images) : []) {
      if (named.has(name)) continue;
      const file = path.join(site.home.images, name);
      if (o.repair) fs.rmSync(file, { recursive: true, force: true });
      problems.push({ kind: 'orphan-file', path: file, detail: 'no catalog row names this file', repaired: o.repair });
    }
    problems.push(...orphanBlobs(db, site.home.registryBlobs, o.repair));
    for (const dir of orphanStaging(site)) {
      if (o.repair) fs.rmSync(dir, { recursive: true, force: true });
      problems.push({
        kind: 'orphan-staging',
        path: dir,
        detail: 'staging of an import whose process is gone',
        repaired: o.repair,
      });
    }
    if (o.repair && problems.some((p) => p.repaired)) {
      appendAudit(db, {
        kind: 'store.repaired',
        outcome: 'info',
        message: `store check --repair removed ${problems.filter((p) => p.repaired).length} orphan(s)`,
        details: { removed: problems.filter((p) => p.repaired).map((p) => p.path) },
      });
    }
  }).immediate();
  return { images: rows.length, checkedBytes, problems };
}
