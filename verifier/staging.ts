/**
 * Receives artifact bytes from the volume reader: each artifact is written to a private staging file (or, when only
 * verifying, nowhere) while its SHA-256 is computed, and checked against the signed statement when its last piece has
 * arrived. Glance's md5 `checksum` and sha512 `os_hash_value` are the statement's signed attestations (docs/FORMAT.md
 * 4.8); they are computed, and then checked, only when the policy says `verifyAllDigests` or (md5) when the statement
 * predates 4.8 and carries none. Pieces of one artifact may come from several volumes; they arrive in order. A delta
 * artifact's pieces are the bytes its recipe takes from the bundle: the rebuilder interleaves them with copies from
 * the base image, so what is written and hashed is the whole artifact either way.
 *
 * Every write is checked to have written all its bytes; a full disk is `E_NO_SPACE` (never a bare I/O error), and
 * `abort()` removes every file this stager wrote, so a failure leaves no half-written artifact behind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError } from '../sneakernet/errors.js';
import { HashPool, type Algorithm, type Digests } from '../sneakernet/digests.js';
import { deltaOf, type Artifact, type Delta, type VolumeEntry } from '../sneakernet/statement.js';
import { transferSize } from '../sneakernet/delta.js';
import { DeltaRebuilder } from './rebuild.js';
import { isNoSpace, noSpaceError } from './space.js';
import { subjectName } from '../sneakernet/subject.js';
import { BlobSplitter, type StagedImageBlobs } from './registry/blob-splitter.js';
import type { ChunkVerification } from './chunk-verify.js';
import type { ReadBuffers } from '../sneakernet/read-buffers.js';
import { DirectFile, WriteBlocks } from '../sneakernet/direct-file.js';

export interface StagedArtifact {
  index: number;
  artifact: Artifact;
  /** The staged file, or null when verifying only. */
  file: string | null;
  /**
   * sha256 as computed; md5 and sha512 as computed, or as the signed statement attests them (`attested`). md5 is null
   * for an oci-image (no Glance checksum) unless the policy asked for every digest.
   */
  digests: Omit<Digests, 'md5'> & { md5: string | null };
  /** The digests taken from the signed statement rather than computed over the bytes. */
  attested: Array<'md5' | 'sha512' | 'sha256'>;
  /** An oci-image: its carried blobs, each staged in a file of its own and verified by its digest. */
  image?: StagedImageBlobs;
}

/**
 * The digests an import computes over every byte: SHA-256 always; sha512 and md5 too when the site's policy asks for
 * every digest (`verifyAllDigests`); md5 when an artifact carries none (a statement older than format 4.8).
 */
export function digestsToCompute(artifacts: readonly Artifact[], verifyAll: boolean): Algorithm[] {
  if (verifyAll) return ['sha256', 'sha512', 'md5'];
  return artifacts.some((a) => a.type === 'vm-image' && a.md5 === undefined) ? ['sha256', 'md5'] : ['sha256'];
}

/** A delta's rebuilder's buffers for base-image bytes (verifier/rebuild.ts `open`: what the emitter may hold + 1). */
const WRITES_IN_FLIGHT = 8;
/**
 * Where the store's file system refuses direct I/O (sneakernet/direct-file.ts), the staged file is flushed in the
 * background (an fdatasync every 64 MiB, sneakernet/durable.ts `Writeback`) only while its bytes arrive slower than
 * this, as from a stick (a USB 3 stick reads at ~200 MiB/s): the import waits for the media anyway, the disk has time
 * to write, and the fsync before promotion has little left (measured at 200 MiB/s, 1 GiB: 20 ms instead of 300). From
 * faster media the only flush is that fsync: flushing while writing made the writes wait for writeback (system time up
 * to twice as much, 1 GiB from the page cache-speed disk).
 */
const BACKGROUND_FLUSH_BELOW = 512 * 1024 * 1024;
/**
 * Pieces of the read buffers being written and hashed at once (each is given back when both are done). The read
 * buffers bound them already; this only bounds the list of promises.
 */
const LENT_IN_FLIGHT = 16;

/** An artifact's hashing: a hash pool's (whole digests) or, in chunk mode, the chunk verification's (4.11). */
interface StagingHasher {
  update(chunk: Buffer): Promise<void>;
  digest(): Promise<Partial<Digests> & { sha256: string; sha256Attested?: boolean }>;
}

interface Open {
  index: number;
  artifact: Artifact;
  hasher: StagingHasher;
  /** The staged copy being written, or null (verifying only, or an oci-image's blob files). */
  out: DirectFile | null;
  file: string | null;
  /** Bytes of the artifact written (and hashed) so far. */
  written: number;
  /** Bytes of the volume entries taken so far (= `written` unless a delta). */
  received: number;
  rebuilder: DeltaRebuilder | null;
  /** An oci-image's bytes go to one staging file per blob (verified each), not to one artifact file. */
  splitter: BlobSplitter | null;
  /** Pieces of the read buffers being hashed and copied, not yet awaited, oldest first. */
  writes: Array<Promise<unknown>>;
}

export class ArtifactStager {
  readonly staged: StagedArtifact[] = [];
  private current: Open | null = null;
  /** Every file opened for writing, kept or not: what `abort()` removes. */
  private readonly written = new Set<string>();
  /** Every image splitter opened: `abort()` removes their files too. */
  private readonly splitters: BlobSplitter[] = [];
  /** The aligned blocks every staged file is written through (made with the first). */
  private blocks: WriteBlocks | null = null;

  /**
   * `dir` null: verify only, write nothing. `baseFile` finds the store file a delta artifact is rebuilt from (it
   * refuses when the base is not there).
   */
  constructor(
    private readonly artifacts: readonly Artifact[],
    private readonly dir: string | null,
    /** A hash pool (whole digests), or the chunk verification of an import in chunk mode (docs/FORMAT.md 4.11). */
    private readonly pool: HashPool | ChunkVerification,
    private readonly baseFile: (a: Artifact & { delta: Delta }) => string = () => {
      throw new EcluseError('E_DELTA_BASE', 'this reader has no image store to rebuild delta artifacts from');
    },
    /** The reader's buffers, when it lends pieces of them (sneakernet/volume-reader.ts): each is given back here. */
    private readonly buffers: ReadBuffers | null = null,
  ) {}

  private async open(index: number): Promise<Open> {
    const artifact = this.artifacts[index];
    if (!artifact) throw new EcluseError('E_FORMAT', `entry for unknown artifact ${index}`);
    const delta = deltaOf(artifact);
    const rebuilder = delta
      ? await DeltaRebuilder.open({ ...artifact, delta }, this.baseFile({ ...artifact, delta }), WRITES_IN_FLIGHT + 1)
      : null;
    if (artifact.type === 'oci-image') {
      const splitter = new BlobSplitter(
        artifact.image.blobs.filter((b) => b.carried),
        this.dir,
        `${artifact.name} ${artifact.version}`,
        subjectName(artifact),
      );
      this.splitters.push(splitter);
      return {
        index,
        artifact,
        hasher: this.hasher(index),
        out: null,
        file: null,
        written: 0,
        received: 0,
        rebuilder,
        splitter,
        writes: [],
      };
    }
    const file = this.dir ? path.join(this.dir, `artifact-${index}`) : null;
    if (file) this.written.add(file);
    const out = file
      ? await DirectFile.create(file, (this.blocks ??= new WriteBlocks()), BACKGROUND_FLUSH_BELOW).catch(
          async (e: unknown) => {
            await rebuilder?.close();
            throw e;
          },
        )
      : null;
    return {
      index,
      artifact,
      hasher: this.hasher(index),
      out,
      file,
      written: 0,
      received: 0,
      rebuilder,
      splitter: null,
      writes: [],
    };
  }

  private hasher(index: number): StagingHasher {
    return this.pool instanceof HashPool ? this.pool.begin() : this.pool.begin(index);
  }

  /** Writes (to the staged file, or an image's blob files) and hashes the artifact's next bytes. */
  private async emit(cur: Open, chunk: Buffer): Promise<void> {
    cur.written += chunk.length;
    const split = cur.splitter?.write(chunk);
    split?.catch(() => undefined); // awaited below; never an unhandled rejection while hashing
    const hashed = cur.hasher.update(chunk);
    hashed.catch(() => undefined); // awaited below; never an unhandled rejection while copying
    await cur.out?.append(chunk);
    await hashed;
    await split;
  }

  /** The volume reader's sink: takes one entry's bytes (a full disk becomes E_NO_SPACE). */
  readonly sink = async (entry: VolumeEntry, data: AsyncIterable<Buffer>): Promise<void> => {
    try {
      await this.take(entry, data);
    } catch (e) {
      if (!isNoSpace(e) || !this.dir) throw e;
      const a = this.artifacts[entry.artifact];
      throw noSpaceError(e, `staging ${a ? `${a.name} ${a.version}` : 'an artifact'}`, this.dir);
    }
  };

  private async take(entry: VolumeEntry, data: AsyncIterable<Buffer>): Promise<void> {
    const lent = this.buffers;
    // Every piece lent by the reader is given back, whatever happens: the reader waits for its buffers.
    const iterator = data[Symbol.asyncIterator]();
    let held: Buffer | null = null;
    try {
      if (entry.offset === 0) this.current = await this.open(entry.artifact);
      const cur = this.current;
      if (!cur || cur.index !== entry.artifact || cur.received !== entry.offset) {
        throw new EcluseError('E_FORMAT', `entry ${entry.path} arrived out of order`, { check: 'volume-structure' });
      }
      const emit = (chunk: Buffer) => this.emit(cur, chunk);
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
        let chunk = r.value;
        if (lent?.owns(chunk)) {
          held = chunk;
          cur.received += chunk.length;
          if (!cur.rebuilder && !cur.splitter) {
            held = null;
            await this.emitLent(cur, chunk, lent);
            continue;
          }
          // A delta's recipe and an image's blob files keep what they are given: they get a copy.
          chunk = Buffer.from(chunk);
          lent.release(held);
          held = null;
        } else {
          cur.received += chunk.length;
        }
        if (cur.rebuilder) await cur.rebuilder.literal(chunk, emit);
        else await emit(chunk);
      }
      if (cur.received === transferSize(cur.artifact)) {
        await cur.rebuilder?.finish(emit);
        await this.finish(cur);
      }
    } catch (e) {
      if (held) lent?.release(held);
      // The pieces the reader had ready are given back as the iteration ends.
      await iterator.return?.();
      throw e;
    }
  }

  /**
   * A piece of the reader's buffers: copied to the staged file and hashed where it lies, both at once, and given back
   * when both are done; the next piece is taken meanwhile.
   */
  private async emitLent(cur: Open, chunk: Buffer, buffers: ReadBuffers): Promise<void> {
    const parts: Array<Promise<unknown>> = [cur.hasher.update(chunk)];
    if (cur.out) parts.push(cur.out.append(chunk));
    cur.written += chunk.length;
    const done = Promise.allSettled(parts).then((settled) => {
      buffers.release(chunk);
      const failed = settled.find((x) => x.status === 'rejected');
      if (failed) throw failed.reason;
    });
    done.catch(() => undefined); // awaited below or in finish(); never an unhandled rejection
    cur.writes.push(done);
    if (cur.writes.length >= LENT_IN_FLIGHT) await cur.writes.shift();
  }

  private async finish(cur: Open): Promise<void> {
    this.current = null;
    let computed: Awaited<ReturnType<StagingHasher['digest']>>;
    let closed = false;
    try {
      await cur.rebuilder?.close();
      computed = await cur.hasher.digest();
      for (const w of cur.writes.splice(0)) await w;
      await cur.out?.finish();
      closed = true;
    } finally {
      // A write that failed (a full disk) must not leave the file open: its blocks would stay taken after removal.
      if (!closed) {
        await Promise.allSettled(cur.writes.splice(0));
        await cur.out?.close();
      }
    }
    const a = cur.artifact;
    const where = { check: 'artifact-digest', artifact: subjectName(a) };
    const delta = deltaOf(a);
    const what = delta
      ? `${a.name} ${a.version}, rebuilt from the bundle and the base ${delta.base.name} ${delta.base.version} in the image store,`
      : `${a.name} ${a.version}`;
    // sha256 first (it is always computed), then whatever else was: a refusal names the first digest that differs.
    const signedMd5 = a.type === 'vm-image' ? a.md5 : undefined;
    for (const algorithm of ['sha256', 'sha512', 'md5'] as const) {
      const signed = algorithm === 'md5' ? signedMd5 : a[algorithm];
      const got = computed[algorithm];
      if (got !== undefined && signed !== undefined && got !== signed) {
        throw new EcluseError('E_DIGEST', `${what} does not match the ${algorithm} in the signed statement`, {
          ...where,
          algorithm,
        });
      }
    }
    const md5 = computed.md5 ?? signedMd5 ?? null;
    if (md5 === null && a.type === 'vm-image')
      throw new EcluseError('E_INTERNAL', `no md5 for ${what}: it was neither signed nor computed`);
    const attested = [
      ...(computed.sha256Attested === true ? (['sha256'] as const) : []),
      ...(computed.md5 === undefined && a.type === 'vm-image' ? (['md5'] as const) : []),
      ...(computed.sha512 === undefined ? (['sha512'] as const) : []),
    ];
    const digests = { sha256: computed.sha256, sha512: computed.sha512 ?? a.sha512, md5 };
    const image = cur.splitter ? await cur.splitter.finish() : undefined;
    this.staged.push({ index: cur.index, artifact: a, file: cur.file, digests, attested, ...(image ? { image } : {}) });
  }

  /**
   * After a failure: closes whatever is still open and removes every file written, at once (before the refusal is
   * audited: on a full disk the audit log needs the room the staged files took).
   */
  async abort(): Promise<void> {
    const cur = this.current;
    this.current = null;
    if (cur) {
      await Promise.allSettled(cur.writes.splice(0));
      await cur.out?.close();
      await cur.rebuilder?.close();
      await cur.hasher.digest().catch(() => undefined);
    }
    await Promise.all([...this.written].map((f) => fs.promises.rm(f, { force: true })));
    await Promise.all(this.splitters.map((x) => x.abort()));
  }
}
