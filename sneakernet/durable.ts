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

/**
 * Hands a file's dirty pages to the disk while it is being written: every `every` bytes an fdatasync starts in the
 * background (one at a time), so the writeback overlaps the copying and the fsync that makes the file count has little
 * left to wait for (without it, a machine with much memory holds the whole file dirty until that fsync). An error of a
 * background fdatasync is kept and thrown by `settle()`: Linux reports a writeback error once per file description, so
 * the final fsync may not see it again.
 */
export class Writeback {
  private inFlight: Promise<void> | null = null;
  private failure: NodeJS.ErrnoException | null = null;
  private handedOver = 0;
  private handedOverAt = performance.now();

  /**
   * `slowerThan` (bytes per second): hand over only while the bytes arrive slower than that (the writer is waiting
   * for its source anyway, so the disk has time to spare); otherwise the final fsync does it all.
   */
  constructor(
    private readonly fd: number,
    private readonly every = 64 * 1024 * 1024,
    private readonly slowerThan = Infinity,
  ) {}

  /** `total`: bytes written to the file so far. */
  wrote(total: number): void {
    if (this.inFlight !== null || total - this.handedOver < this.every) return;
    const now = performance.now();
    const perSecond = ((total - this.handedOver) * 1000) / Math.max(now - this.handedOverAt, 1);
    this.handedOver = total;
    this.handedOverAt = now;
    if (perSecond >= this.slowerThan) return;
    this.inFlight = new Promise<void>((resolve) =>
      fs.fdatasync(this.fd, (e) => {
        if (e && !this.failure) this.failure = e;
        this.inFlight = null;
        resolve();
      }),
    );
  }

  /** Waits for the fdatasync in flight (none may be when the file is closed) and throws the first that failed. */
  async settle(): Promise<void> {
    await this.inFlight;
    if (this.failure) throw this.failure;
  }
}

/** Writes all of `chunk` at `position` (a write may take fewer bytes than it was given). */
export async function writeAll(fd: fs.promises.FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < chunk.length;) {
    const { bytesWritten } = await fd.write(chunk, done, chunk.length - done, position + done);
    done += bytesWritten;
  }
}
