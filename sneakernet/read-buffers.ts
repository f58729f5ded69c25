/**
 * The import's read buffers: a fixed set of large buffers in shared memory, reused for every read of the media, so
 * reading allocates nothing per chunk and memory stays flat whatever the size of the bundle. A buffer is lent out in
 * pieces (to the volume's hash, to the staging writer, to the artifact's hash) and read into again only when every
 * piece of it was given back: `hold` when a piece is lent, `release(piece)` when its user is done with it. The
 * buffers lie in one shared memory so the hashing threads hash the pieces where they lie (sneakernet/digests.ts
 * `shared`), without a copy, and that memory is aligned (sneakernet/direct-io.ts) so the media can be read into them
 * with direct I/O.
 */
import { EcluseError } from './errors.js';
import { alignedSharedMemory, DIRECT_ALIGN } from './direct-io.js';

/**
 * One read of the media: 512 KiB, a multiple of the tar block and of the direct I/O alignment. Read directly, four
 * are in flight at once (sneakernet/volume-reader.ts); 8 of them and the staged file's three 512 KiB aligned blocks
 * (sneakernet/direct-file.ts) keep a 4 GiB import under 100 MiB (measured 96.7-97.2 MiB; with 1 MiB reads and
 * blocks, 102-103).
 */
export const READ_BYTES = 512 * 1024;
/** Buffers: reading ahead, the volume's hash, the artifact's hash and the staging writes each hold one or two. */
export const READ_BUFFERS = 8;

/**
 * Buffers lie this far apart in the memory: a buffer's size and a gap, so that every buffer starts aligned and an
 * empty piece at the very end of one still points into it.
 */
const GAP = 64 * 1024;

export class ReadBuffers {
  /** The one shared memory the buffers lie in. */
  readonly shared: readonly SharedArrayBuffer[];
  /** Whether the buffers are aligned for direct I/O. */
  readonly aligned: boolean;
  private readonly memory: SharedArrayBuffer;
  private readonly stride: number;
  private readonly views: Buffer[];
  private readonly holds: number[];
  private readonly waiting: Array<() => void> = [];
  private next = 0;

  constructor(
    readonly count = READ_BUFFERS,
    readonly bytes = READ_BYTES,
  ) {
    this.stride = Math.ceil(bytes / GAP) * GAP + GAP;
    const { memory, aligned } = alignedSharedMemory(this.stride * count);
    this.memory = memory;
    // A direct read's length is a multiple of the alignment: so must be a buffer's.
    this.aligned = aligned && bytes % DIRECT_ALIGN === 0;
    this.shared = [memory];
    this.views = Array.from({ length: count }, (_, i) => Buffer.from(memory, i * this.stride, bytes));
    this.holds = this.views.map(() => 0);
  }

  /** The next buffer in turn if nothing of it is lent any more (held once by the reader until released), or null. */
  tryTake(): Buffer | null {
    const i = this.next;
    if ((this.holds[i] as number) > 0) return null;
    this.next = (this.next + 1) % this.count;
    this.holds[i] = 1;
    return this.views[i] as Buffer;
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
    return piece.buffer === this.memory;
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
    if (!this.owns(piece)) throw new EcluseError('E_INTERNAL', 'a piece that is not in a read buffer was released');
    return Math.floor(piece.byteOffset / this.stride);
  }
}
