/**
 * The staging area of the import station (`<home>/store/staging/`, mode 0700): each import stages its artifacts in a
 * folder of its own, `import-<pid>-<ms>-<random>`, removed when the import ends whatever its outcome. A folder whose
 * process is gone (killed with SIGKILL, a power cut) is an orphan: the next import removes it (audited), and so does
 * `ecluse store check --repair`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { appendAudit } from './audit.js';
import type { Site } from './site.js';

const STAGING_NAME = /^import-([0-9]+)-/;

/** A fresh staging folder name for this process (not created). */
export function newStagingDir(site: Site): string {
  return path.join(site.home.staging, `import-${process.pid}-${Date.now()}-${randomBytes(4).toString('hex')}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Staging folders (and stray files) whose import process is gone. A folder of a living process is never listed: two
 * imports may run at once (the daemon and the CLI), each sees the other's folder as alive.
 */
export function orphanStaging(site: Site): string[] {
  const dir = site.home.staging;
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => {
      const pid = Number(STAGING_NAME.exec(name)?.[1] ?? NaN);
      return !(Number.isInteger(pid) && pid !== process.pid && processAlive(pid)) && !isOurs(name);
    })
    .map((name) => path.join(dir, name));
}

/** Folders this process is using right now (an import in progress in the same process, e.g. the daemon). */
const inUse = new Set<string>();
function isOurs(name: string): boolean {
  return inUse.has(name);
}

/** Marks a staging folder of this process as in use until `release`. */
export function claimStagingDir(dir: string): () => void {
  const name = path.basename(dir);
  inUse.add(name);
  return () => inUse.delete(name);
}

/** Removes orphan staging folders before an import starts, and audits what was removed. Returns the paths removed. */
export function removeOrphanStaging(site: Site, media: string): string[] {
  const removed: string[] = [];
  for (const dir of orphanStaging(site)) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
      removed.push(dir);
    } catch {
      // Not ours to fight over (permissions): `store check` reports it.
    }
  }
  if (removed.length > 0) {
    appendAudit(site.db, {
      kind: 'store.staging-removed',
      outcome: 'info',
      message: `removed ${removed.length} staging folder(s) left by an import whose process is gone`,
      media,
      details: { removed },
    });
  }
  return removed;
}
