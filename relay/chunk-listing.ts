/**
 * The export station's chunk lists (docs/FORMAT.md 4.11): the SHA-256 of each chunk of every artifact, signed in the
 * statement so the import station can verify one artifact on several cores and name the first bad chunk.
 *
 * The lists ride on the pass that writes the volumes (an entry observer, beside relay/artifact-check.ts), hashed in a
 * thread of their own so the copying thread only moves bytes. An artifact the volumes do not carry whole and in order
 * (a delta: its list covers the rebuilt bytes) is listed from its stored blob before writing. An OCI image not carried
 * in order travels without a list, as does an empty artifact, or every artifact when the bundle would list more than
 * the writer's budget of chunks (the statement is in every signature file).
 *
 * An image listed in the writing pass whose list was kept with the catalog's sha256 (by relay add, or by an earlier
 * export: relay/checked-chunk-lists.ts) is checked by that list here, chunk by chunk, in place of the whole-sha256
 * check.
 */
import fs from 'node:fs';
import { ChunkHashing, type ChunkStream } from '../sneakernet/chunk-hashing.js';
import {
  chunkCount,
  chunkRange,
  WRITER_BUNDLE_CHUNKS_MAX,
  writerChunkSize,
  type Chunks,
} from '../sneakernet/chunk-list.js';
import type { Artifact } from '../sneakernet/statement.js';
import type { PlannedEntry, PlannedVolume } from '../sneakernet/volume-plan.js';
import type { EntryObserver } from '../sneakernet/volume-writer.js';
import { storedCopyChanged, streamable } from './artifact-check.js';
import type { CheckedList } from './checked-chunk-lists.js';

const READ_CHUNK = 1024 * 1024;

/**
 * The chunk size of each artifact the writer lists (by index); absent: no list. The plan counts the same lists in the
 * statement's size (relay/bundle-statement.ts), so the bundle files it estimates are the ones written.
 */
export function listedChunkSizes(
  artifacts: readonly Artifact[],
  volumes: readonly PlannedVolume[],
  inStream: ReadonlySet<number> = streamable(artifacts, volumes),
): Map<number, number> {
  const sizes = new Map<number, number>();
  let total = 0;
  for (const [k, a] of artifacts.entries()) {
    const size = writerChunkSize(a.size);
    if (size === null || (a.type === 'oci-image' && !inStream.has(k))) continue;
    sizes.set(k, size);
    total += chunkCount(a.size, size);
  }
  return total > WRITER_BUNDLE_CHUNKS_MAX ? new Map<number, number>() : sizes;
}

export class ChunkListing implements EntryObserver {
  private readonly hashing = new ChunkHashing(1);
  private readonly inStream: Set<number>;
  /** Chunk size per artifact index; absent: that artifact gets no list. */
  private readonly sizes: Map<number, number>;
  private readonly lists = new Map<number, string[]>();
  private stream: ChunkStream | null = null;
  /** The checked lists this export checks its bytes against (artifact index → list), in place of the whole sha256. */
  private readonly byCheckedList = new Map<number, CheckedList>();

  constructor(
    private readonly artifacts: readonly Artifact[],
    private readonly blobs: readonly string[],
    volumes: readonly PlannedVolume[],
  ) {
    this.inStream = streamable(artifacts, volumes);
    this.sizes = listedChunkSizes(artifacts, volumes, this.inStream);
  }

  /** The chunk size of each artifact this export lists (artifact index → size). */
  get listed(): ReadonlyMap<number, number> {
    return this.sizes;
  }

  /**
   * Takes the checked lists of earlier exports (relay/checked-chunk-lists.ts): each image listed in the writing pass
   * with the same chunk size is checked against its list as it ends. Returns those images' indices: their whole
   * sha256 need not be computed (relay/artifact-check.ts leaves them out).
   */
  checkAgainst(lists: ReadonlyMap<number, CheckedList>): Set<number> {
    for (const [k, l] of lists) {
      if (this.inStream.has(k) && this.sizes.get(k) === l.chunkSize) this.byCheckedList.set(k, l);
    }
    return new Set(this.byCheckedList.keys());
  }

  /** The lists of this export's images whose whole sha256 was checked (`checked`) in the same pass: proven lists. */
  provenLists(checked: ReadonlySet<number>): CheckedList[] {
    const proven: CheckedList[] = [];
    for (const k of checked) {
      const size = this.sizes.get(k);
      const list = this.lists.get(k);
      const a = this.artifacts[k];
      if (!a || size === undefined || !list || !this.inStream.has(k)) continue;
      if (list.filter(Boolean).length === chunkCount(a.size, size)) {
        proven.push({ artifact: k, chunkSize: size, sha256: list.join('') });
      }
    }
    return proven;
  }

  /** Lists, from their blobs, the artifacts whose bytes the volumes do not carry whole and in order. */
  async beforeWriting(): Promise<void> {
    for (const [k, size] of this.sizes) {
      if (this.inStream.has(k)) continue;
      const stream = this.begin(k, size);
      const file = await fs.promises.open(this.blobs[k] ?? '', 'r');
      try {
        const buffer = Buffer.alloc(READ_CHUNK);
        for (let at = 0; ;) {
          const { bytesRead } = await file.read(buffer, 0, READ_CHUNK, at);
          if (bytesRead === 0) break;
          await stream.update(buffer.subarray(0, bytesRead));
          at += bytesRead;
        }
      } finally {
        await file.close();
      }
      await stream.finish();
    }
  }

  start(entry: PlannedEntry): Promise<void> {
    const size = this.sizes.get(entry.artifact);
    if (size !== undefined && this.inStream.has(entry.artifact) && entry.offset === 0) {
      this.stream = this.begin(entry.artifact, size);
    }
    return Promise.resolve();
  }

  async bytes(entry: PlannedEntry, chunk: Buffer): Promise<void> {
    if (this.stream && this.inStream.has(entry.artifact)) await this.stream.update(chunk);
  }

  async end(entry: PlannedEntry): Promise<void> {
    const a = this.artifacts[entry.artifact];
    if (!a || !this.stream || entry.offset + entry.size !== a.size) return;
    const stream = this.stream;
    this.stream = null;
    await stream.finish();
    const checked = this.byCheckedList.get(entry.artifact);
    if (checked) this.compare(a, checked, this.lists.get(entry.artifact) ?? []);
  }

  /** The statement's artifacts with their chunk lists (4.11) added, each complete or not at all. */
  withChunks(artifacts: readonly Artifact[]): Artifact[] {
    return artifacts.map((a, k) => {
      const size = this.sizes.get(k);
      const list = this.lists.get(k);
      if (size === undefined || !list || list.filter(Boolean).length !== chunkCount(a.size, size)) return a;
      const chunks: Chunks = { size, sha256: list.join('') };
      return { ...a, chunks };
    });
  }

  close(): Promise<void> {
    return this.hashing.close();
  }

  /** The first chunk whose digest is not the checked list's is refused, as the whole-sha256 check would refuse it. */
  private compare(a: Artifact, checked: CheckedList, list: readonly string[]): void {
    const count = chunkCount(a.size, checked.chunkSize);
    for (let i = 0; i < count; i++) {
      if (list[i] === checked.sha256.slice(i * 64, (i + 1) * 64)) continue;
      const { start, end } = chunkRange(i, checked.chunkSize, a.size);
      throw storedCopyChanged(
        a,
        `chunk ${i}, bytes ${start}-${end - 1}, is not the one recorded with the catalog's sha256`,
        { algorithm: 'sha256', chunk: i, blob: this.blobs[checked.artifact] ?? '' },
      );
    }
  }

  private begin(k: number, size: number): ChunkStream {
    const list: string[] = [];
    this.lists.set(k, list);
    return this.hashing.begin(size, (i, hex) => (list[i] = hex));
  }
}

/** Two observers of the same written entries, in order (the catalog check first). */
export function bothObservers(first: EntryObserver, second: EntryObserver): EntryObserver {
  return {
    start: async (e) => {
      await first.start(e);
      await second.start(e);
    },
    bytes: async (e, chunk) => {
      await Promise.all([first.bytes(e, chunk), second.bytes(e, chunk)]);
    },
    end: async (e) => {
      await first.end(e);
      await second.end(e);
    },
  };
}
