/**
 * Receives artifact bytes from the volume reader: each artifact is written to a private staging file (or, when only
 * verifying, nowhere) while sha256, sha512 and md5 are computed, and checked against the signed statement when its
 * last piece has arrived. Pieces of one artifact may come from several volumes; they arrive in order.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError } from '../sneakernet/errors.js';
import type { ArtifactHasher, Digests, HashPool } from '../sneakernet/digests.js';
import type { Artifact, VolumeEntry } from '../sneakernet/statement.js';

export interface StagedArtifact {
  index: number;
  artifact: Artifact;
  /** The staged file, or null when verifying only. */
  file: string | null;
  digests: Digests;
}

/**
 * Writes in flight at once (positional, so order does not matter): reading, hashing and writing overlap. Measured:
 * flushing in the background while writing (datasync every 64 MiB) made every write wait for writeback, so the only
 * flush is the fsync before promotion.
 */
const WRITES_IN_FLIGHT = 8;

interface Open {
  index: number;
  artifact: Artifact;
  hasher: ArtifactHasher;
  handle: fs.promises.FileHandle | null;
  file: string | null;
  written: number;
  /** Writes started and not yet awaited, oldest first. */
  writes: Array<Promise<unknown>>;
}

export class ArtifactStager {
  readonly staged: StagedArtifact[] = [];
  private current: Open | null = null;

  /** `dir` null: verify only, write nothing. */
  constructor(
    private readonly artifacts: readonly Artifact[],
    private readonly dir: string | null,
    private readonly pool: HashPool,
  ) {}

  private async open(index: number): Promise<Open> {
    const artifact = this.artifacts[index];
    if (!artifact) throw new EcluseError('E_FORMAT', `entry for unknown artifact ${index}`);
    const file = this.dir ? path.join(this.dir, `artifact-${index}`) : null;
    const handle = file ? await fs.promises.open(file, 'wx', 0o600) : null;
    return { index, artifact, hasher: this.pool.begin(), handle, file, written: 0, writes: [] };
  }

  /** The volume reader's sink: takes one entry's bytes. */
  readonly sink = async (entry: VolumeEntry, data: AsyncIterable<Buffer>): Promise<void> => {
    if (entry.offset === 0) this.current = await this.open(entry.artifact);
    const cur = this.current;
    if (!cur || cur.index !== entry.artifact || cur.written !== entry.offset) {
      throw new EcluseError('E_FORMAT', `entry ${entry.path} arrived out of order`, { check: 'volume-structure' });
    }
    for await (const chunk of data) {
      // Start the write, hash while it runs; wait only when too many writes are in flight.
      if (cur.handle) {
        const write = cur.handle.write(chunk, 0, chunk.length, cur.written);
        write.catch(() => undefined); // awaited below or in finish(); never an unhandled rejection
        cur.writes.push(write);
      }
      cur.written += chunk.length;
      await cur.hasher.update(chunk);
      if (cur.writes.length >= WRITES_IN_FLIGHT) await cur.writes.shift();
    }
    if (cur.written === cur.artifact.size) await this.finish(cur);
  };

  private async finish(cur: Open): Promise<void> {
    this.current = null;
    const digests = await cur.hasher.digest();
    if (cur.handle) {
      for (const w of cur.writes.splice(0)) await w;
      await cur.handle.sync();
      await cur.handle.close();
    }
    const a = cur.artifact;
    const where = { check: 'artifact-digest', artifact: `${a.name}@${a.version}` };
    if (digests.sha256 !== a.sha256) {
      throw new EcluseError(
        'E_DIGEST',
        `${a.name} ${a.version} does not match the sha256 in the signed statement`,
        where,
      );
    }
    if (digests.sha512 !== a.sha512) {
      throw new EcluseError(
        'E_DIGEST',
        `${a.name} ${a.version} does not match the sha512 in the signed statement`,
        where,
      );
    }
    this.staged.push({ index: cur.index, artifact: a, file: cur.file, digests });
  }

  /** Closes whatever is still open (after a failure). */
  async abort(): Promise<void> {
    const cur = this.current;
    this.current = null;
    if (cur) {
      await Promise.allSettled(cur.writes.splice(0));
      await cur.handle?.close().catch(() => undefined);
      await cur.hasher.digest().catch(() => undefined);
    }
  }
}
