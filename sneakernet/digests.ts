/**
 * Hashing while copying: an `ArtifactHasher` computes the pool's digests (sha256, and sha512 and md5 when asked for) of
 * a byte stream in one pass, each in its own worker thread, so hashing overlaps with reading, parsing and writing across
 * cores. The import station asks for sha256 alone when the statement attests md5 and sha512 (docs/FORMAT.md 4.8).
 *
 * Bytes reach the workers through one fixed queue of descriptors (buffer, offset, length) in shared memory: the main
 * thread publishes each piece by advancing a write counter; every worker hashes the piece and advances its own read
 * counter; a queue position is reused when all of them are past it. Signalling is Atomics (wait/notify), not a message
 * per chunk. A piece is either copied into the position's own slot, or, when it already lies in one of the shared
 * buffers the pool was made with (`shared`: the import's read buffers, sneakernet/read-buffers.ts), hashed where it
 * lies, without a copy; `update` then resolves once every worker has hashed it (the caller may reuse it from then on).
 * Memory is bounded by the queue (`SLOTS` × `SLOT_BYTES`, touched only when a piece is copied) whatever the size.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EcluseError } from './errors.js';

export interface Digests {
  sha256: string;
  sha512: string;
  md5: string;
}

const SLOT_BYTES = 1024 * 1024;
/** Queue depth by default (a Glance upload, a store check); an import lends smaller queues (memory flat and low). */
const SLOTS = 16;
const END = -1;
const WRITE = 0;
/** A descriptor's fields: which buffer (index into the worker's list), the offset in it, the length (or END). */
const BUFFER = 0;
const OFFSET = 1;
const LENGTH = 2;
const FIELDS = 3;
export const ALGORITHMS = ['sha256', 'sha512', 'md5'] as const;
export type Algorithm = (typeof ALGORITHMS)[number];

/** Atomics.waitAsync (Node 16+; typed only from lib ES2024, which Node 20 does not fully implement). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      this: void,
      a: Int32Array,
      i: number,
      v: number,
      t: number,
    ): { async: boolean; value: Promise<string> | string };
  }
).waitAsync;

/** The compiled worker beside this module; from TypeScript sources (tests), the one `npm run build` wrote. */
function workerScript(): URL {
  const beside = new URL('./hash-worker.js', import.meta.url);
  if (fs.existsSync(fileURLToPath(beside))) return beside;
  return new URL('../dist/sneakernet/hash-worker.js', import.meta.url);
}

export interface HashPoolOptions {
  /** Queue depth (default 16). */
  slots?: number;
  /** Buffers whose bytes are hashed in place, never copied (the import's read buffers). */
  shared?: readonly SharedArrayBuffer[];
}

/** One hashing worker per algorithm, sharing one queue. Only one ArtifactHasher is active at a time. */
export class HashPool<A extends Algorithm = Algorithm> {
  private readonly algorithms: readonly Algorithm[];
  /** [write counter, read counter of worker 0, 1, ...] */
  private readonly control: Int32Array;
  private readonly ringSlots: number;
  private readonly descriptors: Int32Array;
  private readonly views: Uint8Array[];
  /** Index (in the workers' buffer list) of each shared buffer. */
  private readonly sharedIndex = new Map<ArrayBufferLike, number>();
  private readonly workers: Worker[];
  private readonly digestWaiters: Array<Array<(m: { hex: string }) => void>>;
  /** Every piece is published in the order `send` and `finish` were called: each waits for the one before. */
  private tail: Promise<unknown> = Promise.resolve();
  private failure: Error | null = null;
  private busy = false;

  /** `algorithms`: sha256 is always computed; the default is all three (a Glance upload, a store check). */
  constructor(algorithms: readonly A[] = ALGORITHMS as unknown as readonly A[], o: HashPoolOptions = {}) {
    this.ringSlots = o.slots ?? SLOTS;
    this.descriptors = new Int32Array(new SharedArrayBuffer(4 * FIELDS * this.ringSlots));
    // Untouched pages of a SharedArrayBuffer take no memory: a pool fed only shared buffers never fills its slots.
    const slots = Array.from({ length: this.ringSlots }, () => new SharedArrayBuffer(SLOT_BYTES));
    const buffers = [...slots, ...(o.shared ?? [])];
    (o.shared ?? []).forEach((b, i) => this.sharedIndex.set(b, this.ringSlots + i));
    this.views = slots.map((s) => new Uint8Array(s));
    this.algorithms = ['sha256', ...ALGORITHMS.filter((a) => a !== 'sha256' && algorithms.includes(a as A))];
    this.control = new Int32Array(new SharedArrayBuffer(4 * (1 + this.algorithms.length)));
    this.digestWaiters = this.algorithms.map(() => []);
    this.workers = this.algorithms.map((algorithm, w) => {
      const worker = new Worker(workerScript(), {
        workerData: {
          algorithm,
          reader: w + 1,
          control: this.control.buffer,
          descriptors: this.descriptors.buffer,
          buffers,
        },
        // The worker only hashes: a small heap is enough (each thread's heap counts in the station's memory).
        resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 16 },
      });
      worker.unref();
      worker.on('message', (m: { reader: number; hex: string }) => this.digestWaiters[m.reader - 1]?.shift()?.(m));
      worker.on('error', (e) => {
        this.failure = e;
      });
      return worker;
    });
  }

  /** Waits until every worker has read counter `target` or beyond (`(counter - target) | 0 >= 0`). */
  private async reached(target: number): Promise<void> {
    for (let r = 1; r <= this.algorithms.length; r++) {
      for (;;) {
        if (this.failure) throw this.failure;
        const seen = Atomics.load(this.control, r);
        if (((seen - target) | 0) >= 0) break;
        const w = waitAsync(this.control, r, seen, 1000);
        if (w.async) await w.value;
      }
    }
  }

  /** Waits until the position at the write counter is free (every worker is past its last use). */
  private room(): Promise<void> {
    return this.reached((Atomics.load(this.control, WRITE) - this.ringSlots + 1) | 0);
  }

  /** Publishes one descriptor; returns the write counter after it (the workers are done with it once there). */
  private publish(buffer: number, offset: number, length: number): number {
    const at = (Atomics.load(this.control, WRITE) % this.ringSlots) * FIELDS;
    this.descriptors[at + BUFFER] = buffer;
    this.descriptors[at + OFFSET] = offset;
    Atomics.store(this.descriptors, at + LENGTH, length);
    const after = (Atomics.add(this.control, WRITE, 1) + 1) | 0;
    Atomics.notify(this.control, WRITE);
    return after;
  }

  /** Runs `f` after everything sent before it was published (calls may overlap; pieces keep their order). */
  private inOrder<T>(f: () => Promise<T>): Promise<T> {
    const run = this.tail.then(f);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Hands `chunk` to every worker, in order with what was sent before. A chunk lying in a shared buffer is hashed in
   * place: the promise resolves when every worker is done with it. Any other chunk is copied: the promise resolves
   * once it is (it waits only while the queue is full).
   */
  send(chunk: Buffer): Promise<void> {
    const shared = this.sharedIndex.get(chunk.buffer);
    if (shared !== undefined) {
      return this.inOrder(async () => {
        if (chunk.length === 0) return;
        await this.room();
        const done = this.publish(shared, chunk.byteOffset, chunk.length);
        // Not awaited in the queue: the next piece is published while this one is hashed.
        return () => this.reached(done);
      }).then((wait) => wait?.());
    }
    return this.inOrder(async () => {
      for (let at = 0; at < chunk.length; at += SLOT_BYTES) {
        const piece = chunk.subarray(at, at + SLOT_BYTES);
        await this.room();
        const slot = Atomics.load(this.control, WRITE) % this.ringSlots;
        this.views[slot]?.set(piece);
        this.publish(slot, 0, piece.length);
      }
    });
  }

  /** Ends the current stream and returns its digests. */
  async finish(): Promise<DigestsOf<A>> {
    const replies = this.workers.map(
      (_, i) => new Promise<{ hex: string }>((resolve) => this.digestWaiters[i]?.push(resolve)),
    );
    await this.inOrder(async () => {
      await this.room();
      this.publish(0, 0, END);
    });
    const hexes = await Promise.all(replies);
    this.busy = false;
    return Object.fromEntries(this.algorithms.map((a, i) => [a, hexes[i]?.hex ?? ''])) as DigestsOf<A>;
  }

  /** Starts hashing one stream. */
  begin(): ArtifactHasher<A> {
    if (this.busy)
      throw new EcluseError(
        'E_INTERNAL',
        'a hash pool was asked for a second hasher while one is active (a bug: report it with this line)',
      );
    this.busy = true;
    return new ArtifactHasher(this);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The digests a pool made for `A` returns: all three for the default pool. */
export type DigestsOf<A extends Algorithm> = Pick<Digests, A | 'sha256'> & Partial<Digests>;

export class ArtifactHasher<A extends Algorithm = Algorithm> {
  bytes = 0;

  constructor(private readonly pool: HashPool<A>) {}

  /**
   * Hashes `chunk` after the chunks given before (calls may overlap). Resolves when the caller may reuse `chunk`: at
   * once when it was copied, once hashed when it lies in one of the pool's shared buffers.
   */
  update(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    return this.pool.send(chunk);
  }

  digest(): Promise<DigestsOf<A>> {
    return this.pool.finish();
  }
}
