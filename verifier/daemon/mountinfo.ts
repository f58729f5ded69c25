/**
 * The mount table, read from `/proc/self/mountinfo` (inotify cannot see mounts, so the daemon polls it). Fields are
 * space-separated with spaces, tabs, newlines and backslashes in paths escaped as octal (`\040`); see proc(5).
 */
import fs from 'node:fs';
import path from 'node:path';

export interface MountEntry {
  /** Mount id (unique while mounted; reused afterwards). */
  id: number;
  parentId: number;
  /** `major:minor` of the device. */
  device: string;
  /** Root of the mount within its filesystem. */
  root: string;
  mountPoint: string;
  /** Per-mount options (`ro`, `nosuid`, `nodev`, `noexec`, ...). */
  options: string[];
  fstype: string;
  /** The mount source, e.g. `/dev/sdb1`. */
  source: string;
  /** Per-superblock options (`ro`, `norecovery`, ...). */
  superOptions: string[];
}

/** Decodes proc(5)'s octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash). */
export function decodeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 4) continue;
    out.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2] ?? '',
      root: decodeMountField(fields[3] ?? ''),
      mountPoint: decodeMountField(fields[4] ?? ''),
      options: (fields[5] ?? '').split(','),
      fstype: fields[sep + 1] ?? '',
      source: decodeMountField(fields[sep + 2] ?? ''),
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return out;
}

export async function readMountTable(file = '/proc/self/mountinfo'): Promise<MountEntry[]> {
  return parseMountinfo(await fs.promises.readFile(file, 'utf8'));
}

/** True when `mountPoint` lies strictly below one of the roots. */
export function underRoots(mountPoint: string, roots: readonly string[]): boolean {
  return roots.some((r) => {
    const rel = path.relative(r, mountPoint);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
  });
}

/**
 * The mounts below the roots, one per mount point (when something is mounted over a mount point, the topmost — the
 * last in the table — is the one a reader of that path sees).
 */
export function mediaMounts(table: readonly MountEntry[], roots: readonly string[]): MountEntry[] {
  const byPoint = new Map<string, MountEntry>();
  for (const m of table) if (underRoots(m.mountPoint, roots)) byPoint.set(m.mountPoint, m);
  return [...byPoint.values()];
}

/** A stable key of one mounting of one medium (the mount id alone is reused after an unmount). */
export function mountKey(m: MountEntry): string {
  return `${m.id}:${m.device}:${m.mountPoint}`;
}
