/**
 * Hashing while copying: one `ArtifactHasher` computes sha256, sha512 and md5 of a byte stream in one pass. sha256 runs
 * on the calling thread; sha512 and md5 run in worker threads (reused across artifacts) so the three overlap with I/O
 * across cores. Memory stays bounded: at most `MAX_IN_FLIGHT` bytes are queued for a worker before `update` waits.
 */
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Digests {
  sha256: string;
  sha512: string;
  md5: string;
}

const MAX_IN_FLIGHT = 64 * 1024 * 1024;

/** The compiled worker beside this module; from TypeScript sources (tests), the one `npm run build` wrote. */
function workerScript(): URL {
  const beside = new URL('./hash-worker.js', import.meta.url);
  if (fs.existsSync(fileURLToPath(beside))) return beside;
  return new URL('../dist/sneakernet/hash-worker.js', import.meta.url);
}

class RemoteHash {
  private readonly worker: Worker;
  private inFlight = 0;
  private waiters: Array<() => void> = [];
  private pendingDigest: ((hex: string) => void) | null = null;
  private failure: Error | null = null;

  constructor(algorithm: string) {
    this.worker = new Worker(workerScript(), { workerData: { algorithm } });
    this.worker.unref();
    this.worker.on('message', (m: { kind: 'ack' | 'digest'; bytes: number; hex?: string }) => {
      this.inFlight -= m.bytes;
      if (m.kind === 'digest' && this.pendingDigest) {
        const resolve = this.pendingDigest;
        this.pendingDigest = null;
        this.inFlight = 0;
        resolve(m.hex ?? '');
      }
      this.release();
    });
    this.worker.on('error', (e) => {
      this.failure = e;
      this.release();
    });
  }

  private release(): void {
    if (this.inFlight < MAX_IN_FLIGHT / 2 || this.failure) {
      const w = this.waiters;
      this.waiters = [];
      w.forEach((f) => f());
    }
  }

  /** Sends a copy of `chunk`; resolves at once unless too much is queued. */
  async update(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    this.inFlight += chunk.length;
    this.worker.postMessage({ kind: 'chunk', data: chunk, bytes: chunk.length });
    if (this.inFlight > MAX_IN_FLIGHT) await new Promise<void>((r) => this.waiters.push(r));
  }

  digest(): Promise<string> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve) => {
      this.pendingDigest = resolve;
      this.worker.postMessage({ kind: 'end' });
    });
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

/** A pool of hashing workers, one per remote algorithm, reused for every artifact of an import. */
export class HashPool {
  private readonly sha512 = new RemoteHash('sha512');
  private readonly md5 = new RemoteHash('md5');
  private busy = false;

  /** Starts hashing one stream. Only one hasher of a pool is active at a time. */
  begin(): ArtifactHasher {
    if (this.busy) throw new Error('HashPool: a hasher is already active');
    this.busy = true;
    return new ArtifactHasher(this.sha512, this.md5, () => {
      this.busy = false;
    });
  }

  async close(): Promise<void> {
    await Promise.all([this.sha512.terminate(), this.md5.terminate()]);
  }
}

export class ArtifactHasher {
  private readonly sha256: Hash = createHash('sha256');
  bytes = 0;

  constructor(
    private readonly sha512: RemoteHash,
    private readonly md5: RemoteHash,
    private readonly done: () => void,
  ) {}

  async update(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    this.sha256.update(chunk);
    await Promise.all([this.sha512.update(chunk), this.md5.update(chunk)]);
  }

  async digest(): Promise<Digests> {
    const [sha512, md5] = await Promise.all([this.sha512.digest(), this.md5.digest()]);
    this.done();
    return { sha256: this.sha256.digest('hex'), sha512, md5 };
  }
}
