/**
 * SHA-256 of each fixed-size chunk of one byte stream (docs/FORMAT.md 4.11), on several hashing threads: chunk `i`
 * goes to lane `i mod lanes`, each lane a one-algorithm hash pool (sneakernet/digests.ts, its own worker and its own
 * small ring). While one lane finishes a chunk, the next chunk's bytes already flow to another, so one artifact keeps
 * every lane busy; memory stays bounded by the rings whatever the artifact size.
 *
 * A chunk's digest is handed to `onChunk` as soon as its lane posts it (chunks of one lane in order; across lanes,
 * possibly not); `settled()` waits for every chunk ended so far. This module computes; checking is the caller's
 * (the reader's chunk verification, the writer's chunk listing).
 */
import { HashPool, type ArtifactHasher } from './digests.js';

export class ChunkHashing {
  private readonly lanes: Array<HashPool<'sha256'>>;

  /**
   * `lanes` hashing threads, each with a ring of `slots` MiB; bytes lying in one of the `shared` buffers (the import's
   * read buffers) are hashed where they lie, never copied into a ring.
   */
  constructor(lanes: number, o: { slots?: number; shared?: readonly SharedArrayBuffer[] } = {}) {
    this.lanes = Array.from(
      { length: Math.max(1, lanes) },
      () => new HashPool(['sha256'], { slots: o.slots ?? 4, ...(o.shared ? { shared: o.shared } : {}) }),
    );
  }

  get laneCount(): number {
    return this.lanes.length;
  }

  /**
   * Starts one stream cut into chunks of `chunkSize` bytes (Infinity: the whole stream is one chunk). `onChunk`
   * receives each chunk's index and hex digest; what it throws fails the stream (at the next update or at finish).
   */
  begin(chunkSize: number, onChunk: (index: number, hex: string) => void): ChunkStream {
    return new ChunkStream(this.lanes, chunkSize, onChunk);
  }

  async close(): Promise<void> {
    await Promise.all(this.lanes.map((l) => l.close()));
  }
}

export class ChunkStream {
  /** Bytes taken so far. */
  bytes = 0;
  /** Chunks ended so far (the index of the chunk being filled). */
  private index = 0;
  private filled = 0;
  private current: { lane: number; hasher: ArtifactHasher<'sha256'> } | null = null;
  /** Per lane, the digest of the chunk it last ended (with onChunk called): a lane takes a new chunk only after. */
  private readonly inFlight: Array<Promise<void>>;
  private failure: { error: unknown } | null = null;

  constructor(
    private readonly lanes: ReadonlyArray<HashPool<'sha256'>>,
    private readonly chunkSize: number,
    private readonly onChunk: (index: number, hex: string) => void,
  ) {
    this.inFlight = lanes.map(() => Promise.resolve());
  }

  /** Calls of update and finish run one after the other, in the order made (a caller may overlap them). */
  private tail: Promise<unknown> = Promise.resolve();

  /**
   * Hashes the stream's next bytes, cutting them at chunk boundaries. Overlapping calls are taken in order; `data`
   * must stay unchanged until the returned promise settles (by then it was copied to a lane, or, lying in a shared
   * buffer, hashed where it lies). Handing bytes to the lanes does not wait for their hashing: while one lane hashes a
   * chunk in place, the next call already hands the next chunk to another.
   */
  async update(data: Buffer): Promise<void> {
    await Promise.all(await this.inOrder(() => this.take(data)));
  }

  private inOrder<T>(f: () => Promise<T>): Promise<T> {
    const run = this.tail.then(f);
    this.tail = run.catch(() => undefined);
    return run;
  }

  /** Hands `data` to the lanes, in order; returns what settles once the lanes are done with its bytes. */
  private async take(data: Buffer): Promise<Array<Promise<void>>> {
    const using: Array<Promise<void>> = [];
    let rest = data;
    while (rest.length > 0) {
      if (this.failure) throw this.failure.error;
      const cur = this.current ?? (await this.open());
      const take = Math.min(rest.length, this.chunkSize - this.filled);
      const used = cur.hasher.update(rest.subarray(0, take));
      used.catch(() => undefined); // settled by the caller of update
      using.push(used);
      this.filled += take;
      this.bytes += take;
      rest = rest.subarray(take);
      if (this.filled === this.chunkSize) this.endChunk();
    }
    if (this.failure) throw this.failure.error;
    return using;
  }

  /** Ends the stream (its last, possibly short, chunk; an empty stream is one empty chunk) and waits for every digest. */
  finish(): Promise<void> {
    return this.inOrder(() => this.end());
  }

  private async end(): Promise<void> {
    if (this.current || this.index === 0) {
      if (!this.current) await this.open();
      this.endChunk();
    }
    await this.settled();
    if (this.failure) throw this.failure.error;
  }

  /** Waits until every chunk ended so far has its digest (and onChunk ran). */
  async settled(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  /** Chunks ended so far. */
  get chunks(): number {
    return this.index;
  }

  private async open(): Promise<{ lane: number; hasher: ArtifactHasher<'sha256'> }> {
    const lane = this.index % this.lanes.length;
    // The lane's previous chunk must have posted its digest before the lane takes another stream.
    await this.inFlight[lane];
    const pool = this.lanes[lane] as HashPool<'sha256'>;
    this.current = { lane, hasher: pool.begin() };
    return this.current;
  }

  private endChunk(): void {
    const cur = this.current;
    if (!cur) return;
    const index = this.index;
    this.current = null;
    this.filled = 0;
    this.index++;
    this.inFlight[cur.lane] = cur.hasher.digest().then(
      (d) => {
        try {
          this.onChunk(index, d.sha256);
        } catch (e) {
          this.failure ??= { error: e };
        }
      },
      (e: unknown) => {
        this.failure ??= { error: e };
      },
    );
  }
}
