/**
 * Hashing while copying: an `ArtifactHasher` computes the pool's digests (sha256, and sha512 and md5 when asked for) of
 * a byte stream in one pass, each in its own worker thread, so hashing overlaps with reading, parsing and writing across
 * cores. The import station asks for sha256 alone when the statement attests md5 and sha512 (docs/FORMAT.md 4.8).
 *
 * Bytes reach the workers through one fixed ring of shared-memory slots: the main thread copies each chunk once into
 * the next slot and publishes it by advancing a write counter; every worker hashes the slot and advances its own read
 * counter; a slot is reused when all of them are past it. Signalling is Atomics (wait/notify), not a message per chunk.
 * Memory is bounded by the ring (`SLOTS` × `SLOT_BYTES`) whatever the artifact size.
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
/** Ring depth by default (a Glance upload, a store check); an import lends smaller rings (memory flat and low). */
const SLOTS = 16;
const END = -1;
const WRITE = 0;
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

/** One hashing worker per algorithm, sharing one ring. Only one ArtifactHasher is active at a time. */
export class HashPool<A extends Algorithm = Algorithm> {
  private readonly algorithms: readonly Algorithm[];
  /** [write counter, read counter of worker 0, 1, ...] */
  private readonly control: Int32Array;
  private readonly ringSlots: number;
  private readonly lengths: Int32Array;
  private readonly slots: SharedArrayBuffer[];
  private readonly views: Uint8Array[];
  private readonly workers: Worker[];
  private readonly digestWaiters: Array<Array<(m: { hex: string }) => void>>;
  private failure: Error | null = null;
  private busy = false;

  /** `algorithms`: sha256 is always computed; the default is all three (a Glance upload, a store check). */
  constructor(algorithms: readonly A[] = ALGORITHMS as unknown as readonly A[], o: { slots?: number } = {}) {
    this.ringSlots = o.slots ?? SLOTS;
    this.lengths = new Int32Array(new SharedArrayBuffer(4 * this.ringSlots));
    this.slots = Array.from({ length: this.ringSlots }, () => new SharedArrayBuffer(SLOT_BYTES));
    this.views = this.slots.map((s) => new Uint8Array(s));
    this.algorithms = ['sha256', ...ALGORITHMS.filter((a) => a !== 'sha256' && algorithms.includes(a as A))];
    this.control = new Int32Array(new SharedArrayBuffer(4 * (1 + this.algorithms.length)));
    this.digestWaiters = this.algorithms.map(() => []);
    this.workers = this.algorithms.map((algorithm, w) => {
      const worker = new Worker(workerScript(), {
        workerData: {
          algorithm,
          reader: w + 1,
          control: this.control.buffer,
          lengths: this.lengths.buffer,
          slots: this.slots,
        },
      });
      worker.unref();
      worker.on('message', (m: { reader: number; hex: string }) => this.digestWaiters[m.reader - 1]?.shift()?.(m));
      worker.on('error', (e) => {
        this.failure = e;
      });
      return worker;
    });
  }

  /** Waits until the slot after the write counter is free (every worker is past it). */
  private async room(): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      const write = Atomics.load(this.control, WRITE);
      let slowest = -1;
      let lag = 0;
      for (let r = 1; r <= this.algorithms.length; r++) {
        const behind = (write - Atomics.load(this.control, r)) | 0;
        if (behind > lag) {
          lag = behind;
          slowest = r;
        }
      }
      if (lag < this.ringSlots) return;
      const seen = Atomics.load(this.control, slowest);
      const w = waitAsync(this.control, slowest, seen, 1000);
      if (w.async) await w.value;
    }
  }

  private publish(length: number): void {
    Atomics.store(this.lengths, Atomics.load(this.control, WRITE) % this.ringSlots, length);
    Atomics.add(this.control, WRITE, 1);
    Atomics.notify(this.control, WRITE);
  }

  /** Copies `chunk` into the ring for every worker; waits only while the ring is full. */
  async send(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length; at += SLOT_BYTES) {
      const piece = chunk.subarray(at, at + SLOT_BYTES);
      await this.room();
      this.views[Atomics.load(this.control, WRITE) % this.ringSlots]?.set(piece);
      this.publish(piece.length);
    }
  }

  /** Ends the current stream and returns its digests. */
  async finish(): Promise<DigestsOf<A>> {
    const replies = this.workers.map(
      (_, i) => new Promise<{ hex: string }>((resolve) => this.digestWaiters[i]?.push(resolve)),
    );
    await this.room();
    this.publish(END);
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

  update(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    return this.pool.send(chunk);
  }

  digest(): Promise<DigestsOf<A>> {
    return this.pool.finish();
  }
}
