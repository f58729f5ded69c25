/**
 * Before export signs a statement, every artifact's bytes are proven to be the ones the catalog recorded at `relay
 * add`: a blob that changed on disk since (a flipped bit, an edit, a bad disk) would otherwise be signed under its old
 * digests and refused inside, or worse, travel when only the import station's check stands in its way.
 *
 * The check rides on the pass that writes the volumes (no second read): the volume writer hands each entry's bytes to
 * `onEntryBytes`, which feeds them to hashing threads; when an artifact's last piece is written its digests are
 * compared with the catalog's. SHA-256 is always checked: once the bytes hash to the recorded SHA-256 they are the
 * bytes `relay add` hashed, so the SHA-512 and MD5 recorded with them are theirs too (the argument docs/FORMAT.md 4.8
 * makes for the import station). `allDigests` recomputes SHA-512 and MD5 as well, for an operator who wants the
 * catalog itself checked, at about three times the CPU.
 *
 * A delta artifact carries only some of its bytes, and an artifact whose pieces are not written in order (a resend of
 * a statement from another writer) cannot be hashed in stream: those are hashed from their blob before writing.
 *
 * An image whose chunk list was kept with the catalog's sha256 (by relay add, or an earlier export) is left out
 * (`byChunkList`): relay/chunk-listing.ts checks it against that list in the same pass, and the bytes are not hashed
 * whole again.
 */
import fs from 'node:fs';
import { EcluseError } from '../sneakernet/errors.js';
import { HashPool, type Algorithm, type ArtifactHasher, type DigestsOf } from '../sneakernet/digests.js';
import type { Artifact } from '../sneakernet/statement.js';
import { subjectName } from '../sneakernet/subject.js';
import type { PlannedEntry, PlannedVolume } from '../sneakernet/volume-plan.js';
import type { EntryObserver } from '../sneakernet/volume-writer.js';

const READ_CHUNK = 1024 * 1024;

/**
 * The artifacts whose bytes the volumes carry whole, each in consecutive entries with contiguous offsets from 0:
 * those can be hashed as they are written, one at a time.
 */
export function streamable(artifacts: readonly Artifact[], volumes: readonly PlannedVolume[]): Set<number> {
  const entries = volumes.flatMap((v) => v.entries);
  const ok = new Set<number>();
  const seen = new Set<number>();
  let i = 0;
  while (i < entries.length) {
    const k = (entries[i] as PlannedEntry).artifact;
    let at = 0;
    let contiguous = !seen.has(k);
    for (; i < entries.length && (entries[i] as PlannedEntry).artifact === k; i++) {
      const e = entries[i] as PlannedEntry;
      if (e.offset !== at) contiguous = false;
      at = e.offset + e.size;
    }
    const a = artifacts[k];
    if (contiguous && a && !(a.type === 'vm-image' && a.delta) && at === a.size) ok.add(k);
    else ok.delete(k);
    seen.add(k);
  }
  return ok;
}

export class ArtifactCheck implements EntryObserver {
  private poolOnce: HashPool<Algorithm> | null = null;
  private readonly inStream: Set<number>;
  private hasher: ArtifactHasher<Algorithm> | null = null;
  /** The artifacts whose bytes matched the catalog's digests while they were written (not from their blob). */
  readonly checkedInStream = new Set<number>();
  private readonly byChunkList: ReadonlySet<number>;

  constructor(
    private readonly artifacts: readonly Artifact[],
    private readonly blobs: readonly string[],
    volumes: readonly PlannedVolume[],
    private readonly o: { allDigests?: boolean; byChunkList?: ReadonlySet<number> } = {},
  ) {
    this.inStream = streamable(artifacts, volumes);
    this.byChunkList = o.byChunkList ?? new Set();
  }

  /** Each algorithm hashes in its own thread; a small ring (4 MiB) keeps the export's memory flat. Started on use. */
  private get pool(): HashPool<Algorithm> {
    this.poolOnce ??= new HashPool<Algorithm>(this.o.allDigests ? ['sha256', 'sha512', 'md5'] : ['sha256'], {
      slots: 4,
    });
    return this.poolOnce;
  }

  /** Whether artifact `k` is hashed as it is written. */
  private hashedInStream(k: number): boolean {
    return this.inStream.has(k) && !this.byChunkList.has(k);
  }

  /** Hashes, from their blobs, the artifacts that cannot be hashed while the volumes are written. */
  async beforeWriting(): Promise<void> {
    for (const [k, a] of this.artifacts.entries()) {
      // An OCI image's blobs were each checked against their digests when they were stored (relay add-image).
      if (this.inStream.has(k) || a.type === 'oci-image') continue;
      const hasher = this.pool.begin();
      const file = await fs.promises.open(this.blobs[k] ?? '', 'r');
      try {
        const buffer = Buffer.allocUnsafe(READ_CHUNK);
        for (let at = 0; ;) {
          const { bytesRead } = await file.read(buffer, 0, READ_CHUNK, at);
          if (bytesRead === 0) break;
          await hasher.update(buffer.subarray(0, bytesRead));
          at += bytesRead;
        }
      } finally {
        await file.close();
      }
      this.compare(k, hasher.bytes, await hasher.digest());
    }
  }

  start(entry: PlannedEntry): Promise<void> {
    if (this.hashedInStream(entry.artifact) && entry.offset === 0) this.hasher = this.pool.begin();
    return Promise.resolve();
  }

  async bytes(entry: PlannedEntry, chunk: Buffer): Promise<void> {
    if (this.hashedInStream(entry.artifact)) await this.hasher?.update(chunk);
  }

  async end(entry: PlannedEntry): Promise<void> {
    const a = this.artifacts[entry.artifact];
    if (!a || !this.hashedInStream(entry.artifact) || entry.offset + entry.size !== a.size || !this.hasher) return;
    const hasher = this.hasher;
    this.hasher = null;
    this.compare(entry.artifact, hasher.bytes, await hasher.digest());
    this.checkedInStream.add(entry.artifact);
  }

  async close(): Promise<void> {
    await this.poolOnce?.close();
  }

  private compare(k: number, bytes: number, got: DigestsOf<Algorithm>): void {
    const a = this.artifacts[k];
    if (!a) return;
    const md5 = a.type === 'vm-image' ? a.md5 : undefined;
    const expected: Partial<Record<Algorithm, string | undefined>> = { sha256: a.sha256, sha512: a.sha512, md5 };
    const wrong =
      bytes !== a.size
        ? 'size'
        : (['sha256', 'sha512', 'md5'] as const).find((alg) => got[alg] && expected[alg] && got[alg] !== expected[alg]);
    if (!wrong) return;
    throw storedCopyChanged(a, `its ${wrong} is not the catalog's`, { algorithm: wrong, blob: this.blobs[k] ?? '' });
  }
}

/**
 * The refusal of an export whose stored image is not the bytes `relay add` recorded (`why`: which check said so),
 * with the way out; the whole-digest check and the chunk-list check (relay/chunk-listing.ts) both end here.
 */
export function storedCopyChanged(a: Artifact, why: string, context: Record<string, unknown>): EcluseError {
  const name = subjectName(a);
  return new EcluseError(
    'E_DIGEST',
    `the stored copy of ${a.name} ${a.version} changed since it was added (${why}); nothing was signed or kept: remove it (ecluse relay remove ${name}) and add the image again (ecluse relay add FILE --name ${a.name} --version ${a.version})`,
    { check: 'stored-artifact', artifact: name, ...context },
  );
}
