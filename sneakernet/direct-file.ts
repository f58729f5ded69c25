/**
 * A file written from first byte to last with direct I/O where its file system takes it (sneakernet/direct-io.ts):
 * the import's staged copy of an artifact (verifier/staging.ts), the export's volumes (sneakernet/volume-writer.ts).
 * The bytes are gathered into a few aligned 1 MiB blocks and each full block is written straight to the disk, several
 * at once, at its aligned offset; the last block is written padded to the alignment and the file cut back to its
 * size. Nothing of it passes through the page cache, so the fsync that makes it count only has the file's metadata
 * and the device's cache left to flush.
 *
 * Where O_DIRECT is refused, the same blocks are written through the page cache, flushed in the background while the
 * bytes arrive slowly (sneakernet/durable.ts `Writeback`), and fsynced at the end, as before.
 */
import fs from 'node:fs';
import { alignedSharedMemory, openDirect, roundUp } from './direct-io.js';
import { Writeback } from './durable.js';
import { EcluseError } from './errors.js';
import { checkId } from './check-ids.js';

/** One block: 512 KiB, as the media is read (a multiple of any direct I/O alignment). */
const BLOCK = 512 * 1024;
/** Blocks being filled or written at once: while two are on their way to the disk, the third fills. */
const BLOCKS = 3;

/** The blocks files are written through, one file at a time (allocated once, e.g. per import). */
export class WriteBlocks {
  readonly views: Buffer[];
  readonly aligned: boolean;

  /** `direct: false`: write through the page cache even where direct I/O could be used. */
  constructor(o: { direct?: boolean } = {}) {
    const { memory, aligned } = alignedSharedMemory(BLOCK * BLOCKS);
    this.aligned = aligned && o.direct !== false;
    this.views = Array.from({ length: BLOCKS }, (_, i) => Buffer.from(memory, i * BLOCK, BLOCK));
  }
}

export class DirectFile {
  /** The block being filled, and how much of it is. */
  private block = 0;
  private fill = 0;
  /** The file offset of the block being filled (bytes appended before it). */
  private offset = 0;
  /** Per block, its write to the disk while one is on its way. */
  private readonly writing: Array<Promise<void> | null>;
  private failure: { error: unknown } | null = null;
  /** Appends run one after the other, in the order made (a caller may overlap them). */
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly handle: fs.promises.FileHandle,
    /** Whether the file was opened with O_DIRECT. */
    readonly direct: boolean,
    private readonly blocks: WriteBlocks,
    private readonly writeback: Writeback | null,
  ) {
    this.writing = blocks.views.map(() => null);
  }

  /**
   * Creates `file` (refusing an existing one) with `mode`. `slowerThan`: through the page cache, flush in the
   * background while the bytes arrive slower than this many bytes a second (Infinity: always).
   */
  static async create(file: string, blocks: WriteBlocks, slowerThan: number, mode = 0o600): Promise<DirectFile> {
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;
    const { handle, direct } = await openDirect(file, flags, mode, blocks.aligned);
    return new DirectFile(handle, direct, blocks, direct ? null : new Writeback(handle.fd, undefined, slowerThan));
  }

  /** Bytes appended so far. */
  get size(): number {
    return this.offset + this.fill;
  }

  /**
   * Copies `piece` to the end of the file's bytes; resolves once `piece` may be reused (it was copied into a block).
   * A full block starts its write; when every block is on its way, this waits for the oldest (and throws its failure).
   * Overlapping calls are taken in order.
   */
  append(piece: Buffer): Promise<void> {
    const run = this.tail.then(() => this.appendNow(piece));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async appendNow(piece: Buffer): Promise<void> {
    let rest = piece;
    while (rest.length > 0) {
      if (this.fill === 0) await this.free(this.block);
      const view = this.blocks.views[this.block] as Buffer;
      const n = Math.min(BLOCK - this.fill, rest.length);
      rest.copy(view, this.fill, 0, n);
      this.fill += n;
      rest = rest.subarray(n);
      if (this.fill === BLOCK) this.send(BLOCK);
    }
  }

  /** Writes what is left, cuts the file to its size, waits for every write and fsyncs it; closes it. */
  async finish(): Promise<void> {
    try {
      await this.tail;
      const size = this.size;
      if (this.fill > 0) {
        const length = this.direct ? roundUp(this.fill) : this.fill;
        (this.blocks.views[this.block] as Buffer).fill(0, this.fill, length);
        this.send(length);
      }
      for (let i = 0; i < this.writing.length; i++) await this.free(i);
      if (this.direct) await this.handle.truncate(size);
      await this.writeback?.settle();
      await this.handle.sync();
    } finally {
      await this.close();
    }
  }

  /** After a failure: waits for the writes on their way (nothing may write into a closed file), then closes. */
  async close(): Promise<void> {
    await this.tail;
    await Promise.allSettled(this.writing.filter((w) => w !== null));
    await this.writeback?.settle().catch(() => undefined);
    await this.handle.close().catch(() => undefined);
  }

  /** Starts writing the current block's first `length` bytes at its offset; the next block is filled meanwhile. */
  private send(length: number): void {
    const i = this.block;
    const at = this.offset;
    const bytes = (this.blocks.views[i] as Buffer).subarray(0, length);
    const appended = at + this.fill;
    this.writing[i] = this.write(bytes, at).then(
      () => this.writeback?.wrote(appended),
      (e: unknown) => void (this.failure ??= { error: e }),
    );
    this.offset = appended;
    this.fill = 0;
    this.block = (i + 1) % this.writing.length;
  }

  /** Waits until block `i` is no longer being written; throws the first write failure. */
  private async free(i: number): Promise<void> {
    await this.writing[i];
    this.writing[i] = null;
    if (this.failure) throw this.failure.error;
  }

  /** A short write is continued (through the page cache) or, direct (only a filling disk does it), a full disk. */
  private async write(bytes: Buffer, position: number): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.handle.write(bytes, done, bytes.length - done, position + done);
      if (bytesWritten <= 0 || (this.direct && bytesWritten < bytes.length)) {
        throw new EcluseError(
          'E_NO_SPACE',
          `a write stored ${bytesWritten} of ${bytes.length - done} bytes at offset ${position + done}`,
          { check: checkId('space') },
        );
      }
      done += bytesWritten;
    }
  }
}
