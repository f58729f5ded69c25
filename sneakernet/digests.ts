/**
 * Hashing while copying: one `ArtifactHasher` computes sha256, sha512 and md5 of a byte stream in one pass. sha256 runs
 * on the calling thread; sha512 and md5 run in two worker threads (reused across artifacts) so the three overlap with
 * I/O across cores.
 *
 * Bytes reach the workers through a fixed ring of shared-memory slots: each chunk is copied once into a free slot,
 * both workers hash that slot, and it is free again when both have answered. Memory is bounded by the ring
 * (`SLOTS` × `SLOT_BYTES`) whatever the artifact size, and nothing depends on when the garbage collector runs.
 */
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

export interface Digests {
  sha256: string;
  sha512: string;
  md5: string;
}

const SLOT_BYTES = 1024 * 1024;
const SLOTS = 16;
const REMOTE_ALGORITHMS = ['sha512', 'md5'] as const;

/** The compiled worker beside this module; from TypeScript sources (tests), the one `npm run build` wrote. */
function workerScript(): URL {
  const beside = new URL('./hash-worker.js', import.meta.url);
  if (fs.existsSync(fileURLToPath(beside))) return beside;
  return new URL('../dist/sneakernet/hash-worker.js', import.meta.url);
}

type WorkerReply = { kind: 'done'; slot: number } | { kind: 'digest'; hex: string };

/** Two hashing workers sharing one ring of slots. Only one ArtifactHasher is active at a time. */
export class HashPool {
  private readonly slots = Array.from({ length: SLOTS }, () => new SharedArrayBuffer(SLOT_BYTES));
  private readonly views = this.slots.map((s) => new Uint8Array(s));
  private readonly pending = new Array<number>(SLOTS).fill(0);
  private readonly free: number[] = [...Array(SLOTS).keys()];
  private waiters: Array<() => void> = [];
  private readonly workers: Worker[];
  private readonly digestWaiters: Array<Array<(hex: string) => void>> = REMOTE_ALGORITHMS.map(() => []);
  private failure: Error | null = null;
  private busy = false;

  constructor() {
    this.workers = REMOTE_ALGORITHMS.map((algorithm, w) => {
      const worker = new Worker(workerScript(), { workerData: { algorithm, slots: this.slots } });
      worker.unref();
      worker.on('message', (m: WorkerReply) => {
        if (m.kind === 'done') {
          if (--this.pending[m.slot]! === 0) this.release(m.slot);
        } else this.digestWaiters[w]?.shift()?.(m.hex);
      });
      worker.on('error', (e) => {
        this.failure = e;
        this.waiters.splice(0).forEach((f) => f());
      });
      return worker;
    });
  }

  private release(slot: number): void {
    this.free.push(slot);
    this.waiters.shift()?.();
  }

  private async acquire(): Promise<number> {
    for (;;) {
      if (this.failure) throw this.failure;
      const slot = this.free.pop();
      if (slot !== undefined) return slot;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  /** Copies `chunk` into the ring for both workers; waits only while every slot is in use. */
  async send(chunk: Buffer): Promise<void> {
    for (let at = 0; at < chunk.length; at += SLOT_BYTES) {
      const piece = chunk.subarray(at, at + SLOT_BYTES);
      const slot = await this.acquire();
      this.views[slot]?.set(piece);
      this.pending[slot] = this.workers.length;
      for (const w of this.workers) w.postMessage({ kind: 'chunk', slot, length: piece.length });
    }
  }

  /** Ends the current stream in every worker and returns their digests (sha512, md5). */
  async finish(): Promise<[string, string]> {
    if (this.failure) throw this.failure;
    const digests = this.workers.map(
      (w, i) =>
        new Promise<string>((resolve) => {
          this.digestWaiters[i]?.push(resolve);
          w.postMessage({ kind: 'end' });
        }),
    );
    const [sha512, md5] = await Promise.all(digests);
    this.busy = false;
    return [sha512 ?? '', md5 ?? ''];
  }

  /** Starts hashing one stream. */
  begin(): ArtifactHasher {
    if (this.busy) throw new Error('HashPool: a hasher is already active');
    this.busy = true;
    return new ArtifactHasher(this);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

export class ArtifactHasher {
  private readonly sha256: Hash = createHash('sha256');
  bytes = 0;

  constructor(private readonly pool: HashPool) {}

  async update(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    const sent = this.pool.send(chunk);
    this.sha256.update(chunk);
    await sent;
  }

  async digest(): Promise<Digests> {
    const [sha512, md5] = await this.pool.finish();
    return { sha256: this.sha256.digest('hex'), sha512, md5 };
  }
}
