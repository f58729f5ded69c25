/**
 * Durable writes, as every writer of écluse does them: a file's data is fsynced before it counts as written, and the
 * folder is fsynced after a file appears in it or is renamed into it, so a crash or a pulled stick never leaves a
 * name pointing at data that was not on the device.
 */
import fs from 'node:fs';

/** Writes a new file (refusing to replace one) and fsyncs it. */
export async function writeFileSynced(
  file: string,
  data: string | Buffer,
  o: { flag?: 'wx' | 'w'; mode?: number } = {},
): Promise<void> {
  const fd = await fs.promises.open(file, o.flag ?? 'wx', o.mode ?? 0o644);
  try {
    await fd.writeFile(data);
    await fd.sync();
  } finally {
    await fd.close();
  }
}

export async function syncDir(dir: string): Promise<void> {
  const fd = await fs.promises.open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/** The same, for code that must not yield (inside a SQLite transaction). */
export function syncDirSync(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
