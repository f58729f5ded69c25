/**
 * The import's chunk verification (docs/FORMAT.md 4.11): an artifact whose statement entry carries a signed chunk
 * list has each chunk's SHA-256 computed on the hashing lanes as its bytes are staged and compared with the list; the
 * first chunk that differs is refused (E_DIGEST) naming the artifact, the chunk, its byte range and the volumes its
 * bytes came from. When every chunk matched, the artifact's whole `sha256` is a signed attestation like sha512 and md5
 * (4.8): the signers hashed these very bytes. An artifact without a list is hashed whole, as one chunk, on the first
 * lane, and compared with its `sha256`.
 *
 * The stager uses it in place of a hash pool's hasher (same `update`/`digest`). In chunk mode (`chunkMode`: the policy
 * does not ask for every digest and every VM image attests its md5) it is the import's only artifact hashing, on two
 * lanes. Otherwise a statement with chunk lists is verified chunk by chunk on one lane *and* hashed whole by the
 * import's hash pool (`verifyAllDigests`, or an md5 to compute): a signed list that does not match the bytes is
 * refused whatever the policy, and a site that asks for every digest gets every one.
 */
import { EcluseError } from '../sneakernet/errors.js';
import { ChunkHashing, type ChunkStream } from '../sneakernet/chunk-hashing.js';
import type { Digests, HashPool } from '../sneakernet/digests.js';
import { chunkCount, chunkDigest, chunkRange } from '../sneakernet/chunk-list.js';
import { deltaOf, type Artifact, type Statement } from '../sneakernet/statement.js';
import { subjectName } from '../sneakernet/subject.js';

/** Hashing lanes of an import in chunk mode: two threads in place of the one whole-artifact SHA-256 thread. */
export const IMPORT_CHUNK_LANES = 2;

/**
 * Whether an import verifies by chunks: some artifact carries a list, the site does not ask for every digest
 * (`verifyAllDigests` recomputes the whole sha256, sha512 and md5), and every VM image attests its md5.
 */
export function chunkMode(artifacts: readonly Artifact[], verifyAll: boolean): boolean {
  if (verifyAll) return false;
  if (!artifacts.some((a) => a.chunks !== undefined)) return false;
  return artifacts.every((a) => a.type !== 'vm-image' || a.md5 !== undefined);
}

/** What the stager needs of a hasher: the digests an import's hash pool would give (here sha256, verified). */
export interface ArtifactVerifier {
  update(chunk: Buffer): Promise<void>;
  digest(): Promise<Partial<Digests> & { sha256: string; sha256Attested?: boolean }>;
}

/** How an import hashes artifacts when its statement carries chunk lists; null when it carries none. */
export function chunkVerificationFor(
  statement: Statement,
  verifyAll: boolean,
  wholePool: () => HashPool,
  shared?: readonly SharedArrayBuffer[],
): ChunkVerification | null {
  const artifacts = statement.predicate.artifacts;
  if (!artifacts.some((a) => a.chunks !== undefined)) return null;
  if (chunkMode(artifacts, verifyAll)) return new ChunkVerification(statement, IMPORT_CHUNK_LANES, null, shared);
  return new ChunkVerification(statement, 1, wholePool(), shared);
}

export class ChunkVerification {
  private readonly hashing: ChunkHashing;

  /**
   * `whole`: a hash pool that also hashes every artifact whole (its digests are the ones returned). `shared`: the
   * import's read buffers, whose pieces the lanes hash where they lie (no copy into the lanes' rings).
   */
  constructor(
    private readonly statement: Statement,
    lanes = IMPORT_CHUNK_LANES,
    private readonly whole: HashPool | null = null,
    shared?: readonly SharedArrayBuffer[],
  ) {
    this.hashing = new ChunkHashing(lanes, shared ? { shared } : {});
  }

  /** Starts verifying the artifact at `index` of the statement. */
  begin(index: number): ArtifactVerifier {
    const a = this.statement.predicate.artifacts[index];
    if (!a) throw new EcluseError('E_INTERNAL', `chunk verification: no artifact ${index} (a bug: report it)`);
    if (!this.whole) return a.chunks ? this.byChunks(index, a) : this.wholeOnLane();
    const whole = this.whole.begin();
    if (!a.chunks) return whole;
    const chunks = this.byChunks(index, a);
    return {
      // Both always run to the end of each call (a refused chunk leaves no byte half-sent to the other).
      update: async (chunk) => {
        await both(chunks.update(chunk), whole.update(chunk));
      },
      digest: async () => (await both(chunks.digest(), whole.digest()))[1],
    };
  }

  async close(): Promise<void> {
    await Promise.all([this.hashing.close(), this.whole?.close()]);
  }

  /** An artifact without a chunk list: its whole SHA-256 on the first lane. */
  private wholeOnLane(): ArtifactVerifier {
    let sha256 = '';
    const stream = this.hashing.begin(Infinity, (_, hex) => (sha256 = hex));
    return {
      update: (chunk) => stream.update(chunk),
      digest: async () => {
        await stream.finish();
        return { sha256 };
      },
    };
  }

  private byChunks(index: number, a: Artifact): ArtifactVerifier {
    const chunks = a.chunks;
    if (!chunks) throw new EcluseError('E_INTERNAL', 'chunk verification without a chunk list (a bug: report it)');
    const count = chunkCount(a.size, chunks.size);
    const bad: number[] = [];
    const stream = this.hashing.begin(chunks.size, (i, hex) => {
      if (i >= count || hex !== chunkDigest(chunks, i)) bad.push(i);
    });
    // The first bad chunk by index: a later chunk on another lane may report before an earlier one.
    const refuseIfBad = async (s: ChunkStream) => {
      if (bad.length === 0) return;
      await s.settled();
      throw this.refusal(index, a, Math.min(...bad));
    };
    return {
      update: async (chunk) => {
        await stream.update(chunk);
        await refuseIfBad(stream);
      },
      digest: async () => {
        await stream.finish();
        await refuseIfBad(stream);
        if (stream.bytes !== a.size || stream.chunks !== count) {
          throw new EcluseError(
            'E_DIGEST',
            `${describe(a)} is ${stream.bytes} bytes in ${stream.chunks} chunks; the signed statement says ${a.size} bytes in ${count}`,
            { check: 'artifact-chunk', artifact: subjectName(a) },
          );
        }
        // Every byte is in a chunk that matched the signed list: the signed sha256 is the one of these bytes.
        return { sha256: a.sha256, sha256Attested: true };
      },
    };
  }

  private refusal(index: number, a: Artifact, chunk: number): EcluseError {
    const chunks = a.chunks;
    const size = chunks?.size ?? a.size;
    const { start, end } = chunkRange(chunk, size, a.size);
    const count = chunkCount(a.size, size);
    const volumes = deltaOf(a) ? [] : volumesHolding(this.statement, index, start, end);
    const from = volumes.length > 0 ? `, read from ${volumes.join(' and ')}` : '';
    const badChunk = `${describe(a)}: chunk ${chunk + 1} of ${count} (bytes ${start}–${end - 1}${from})`;
    return new EcluseError('E_DIGEST', `${badChunk} does not match the chunk list in the signed statement`, {
      check: 'artifact-chunk',
      artifact: subjectName(a),
      chunk,
      badChunk,
      bytes: `${start}-${end - 1}`,
      ...(volumes.length > 0 ? { volume: volumes.join(',') } : {}),
    });
  }
}

/** Both results, once both settled; the first one's failure first (a bad chunk before a whole digest). */
async function both<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([first, second]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}

function describe(a: Artifact): string {
  const delta = deltaOf(a);
  return delta
    ? `${a.name} ${a.version} (rebuilt from the bundle and the base ${delta.base.name} ${delta.base.version} in the image store)`
    : `${a.name} ${a.version}`;
}

/** The volumes whose entries carry bytes `[start, end)` of artifact `index` (not a delta: offsets are its own). */
export function volumesHolding(s: Statement, index: number, start: number, end: number): string[] {
  return s.predicate.volumes
    .filter((v) => v.entries.some((e) => e.artifact === index && e.offset < end && e.offset + e.size > start))
    .map((v) => v.name);
}
