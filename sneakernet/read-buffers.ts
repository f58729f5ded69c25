/**
 * The import's read buffers: a fixed set of large buffers in shared memory, reused for every read of the media, so
 * reading allocates nothing per chunk and memory stays flat whatever the size of the bundle. A buffer is lent out in
 * pieces (to the volume's hash, to the staging writer, to the artifact's hash) and read into again only when every
 * piece of it was given back: `hold` when a piece is lent, `release(piece)` when its user is done with it. The
 * buffers are SharedArrayBuffers so the hashing threads hash the pieces where they lie (sneakernet/digests.ts
 * `shared`), without a copy.
 */
import { EcluseError } from './errors.js';

/** One read of the media: a MiB (few system calls; 2 MiB measured no faster), a multiple of the tar block. */
export const READ_BYTES = 1024 * 1024;
/** Buffers: reading ahead, the volume's hash, the artifact's hash and the staging writes each hold one or two. */
export const READ_BUFFERS = 8;

export class ReadBuffers {
  readonly shared: readonly SharedArrayBuffer[];
  private readonly views: Buffer[];
  private readonly holds: number[];
  private readonly index = new Map<ArrayBufferLike, number>();
  private readonly waiting: Array<() => void> = [];
  private next = 0;

  constructor(
    readonly count = READ_BUFFERS,
    readonly bytes = READ_BYTES,
  ) {
    this.shared = Array.from({ length: count }, () => new SharedArrayBuffer(bytes));
    this.views = this.shared.map((s) => Buffer.from(s));
    this.holds = this.shared.map(() => 0);
    this.shared.forEach((s, i) => this.index.set(s, i));
  }

  /** The next buffer in turn, once nothing of it is lent any more; held once (by the reader) until released. */
  async take(): Promise<Buffer> {
    const i = this.next;
    this.next = (this.next + 1) % this.count;
    while ((this.holds[i] as number) > 0) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.holds[i] = 1;
    return this.views[i] as Buffer;
  }

  /** Whether `piece` lies in one of these buffers (then it must be released). */
  owns(piece: Buffer): boolean {
    return this.index.has(piece.buffer);
  }

  /** One more user of the buffer `piece` lies in. */
  hold(piece: Buffer): void {
    const i = this.at(piece);
    this.holds[i] = (this.holds[i] as number) + 1;
  }

  /** A user of the buffer `piece` lies in is done with it. */
  release(piece: Buffer): void {
    const i = this.at(piece);
    const n = (this.holds[i] as number) - 1;
    if (n < 0) throw new EcluseError('E_INTERNAL', 'a read buffer was released more often than it was lent');
    this.holds[i] = n;
    if (n === 0) for (const wake of this.waiting.splice(0)) wake();
  }

  /** Pieces still lent out (0 once every user gave its piece back). */
  get lent(): number {
    return this.holds.reduce((a, b) => a + b, 0);
  }

  private at(piece: Buffer): number {
    const i = this.index.get(piece.buffer);
    if (i === undefined) throw new EcluseError('E_INTERNAL', 'a piece that is not in a read buffer was released');
    return i;
  }
}
