/**
 * Content-defined deltas for the export station (docs/FORMAT.md 4.6). Successive releases of a VM image share most of
 * their bytes, but not at fixed offsets: a few inserted bytes shift everything after them. Cutting both releases into
 * chunks where the content says so (FastCDC, a gear-hash rolling cut) makes the shared runs line up again; a chunk of
 * the new release whose SHA-256 is also a chunk of a release the import station holds (known from its receipts) is
 * sent as "copy these bytes of the base", the rest travels.
 *
 * The chunking is only the export station's way of finding shared bytes: the import station never chunks anything,
 * it follows the signed recipe and checks the rebuilt image against the signed sha256/sha512.
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import fastcdc from '@dstanesc/wasm-chunking-fastcdc-node';
import { z } from 'zod';
import { LIMITS } from '../sneakernet/limits.js';
import { storedRows } from '../sneakernet/stored-rows.js';
import { transferSize } from '../sneakernet/delta.js';
import { deltaOf, type Artifact, type Delta } from '../sneakernet/statement.js';
import { blobPath, type ArtifactRow, type RelayHome } from './catalog.js';
import type { Chunk, ChunkParams } from './chunk.js';
import { acknowledgement } from './receipts/acknowledgement.js';
import { buildRecipe, refineInPlace } from './recipe.js';
import { subjectName } from '../sneakernet/subject.js';
import { otherReleases } from './artifacts.js';

export type { Chunk, ChunkParams } from './chunk.js';

/**
 * Chunk sizes for an artifact of `size` bytes: 16 KiB on average up to 1 GiB (small enough that scattered changes of
 * a qcow2 cluster, 64 KiB, cost little more than the cluster), then growing so that an artifact makes at most about
 * 65,536 chunks (the index of a base is held in memory). Both releases of a pair are cut with the same parameters.
 */
export function chunkParams(size: number): ChunkParams {
  let avg = 16 * 1024;
  while (avg < 1024 * 1024 && size / avg > 65_536) avg *= 2;
  return { min: avg / 4, avg, max: avg * 4 };
}

/** Bytes read per call of the chunker; a chunk never spans more than the carried tail plus one window. */
const WINDOW = 4 * 1024 * 1024;

/**
 * Cuts a file into content-defined chunks, streaming: each window is cut, every chunk but the last (which may only
 * end because the window does) is kept, and the last is carried into the next window. FastCDC starts every chunk's
 * search afresh at its first byte, so this gives the same cuts as chunking the whole file at once.
 */
export async function chunkFile(file: string, params: ChunkParams): Promise<Chunk[]> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const buf = Buffer.alloc(WINDOW + params.max);
    const chunks: Chunk[] = [];
    let carried = 0; // bytes at the start of buf not cut yet
    let base = 0; // file offset of buf[0]
    for (;;) {
      const { bytesRead } = await fh.read(buf, carried, buf.length - carried, base + carried);
      const filled = carried + bytesRead;
      const eof = bytesRead === 0 || filled < buf.length;
      if (filled === 0) break;
      const cuts = fastcdc.compute_chunks(buf.subarray(0, filled), params.min, params.avg, params.max);
      // cuts: 0, end of chunk 1, ..., filled
      const keep = eof ? cuts.length - 1 : Math.max(cuts.length - 2, 1);
      for (let i = 0; i < keep; i++) {
        const from = cuts[i] ?? 0;
        const to = cuts[i + 1] ?? filled;
        if (to <= from) continue;
        const sha256 = createHash('sha256').update(buf.subarray(from, to)).digest('hex');
        chunks.push({ offset: base + from, size: to - from, sha256 });
      }
      if (eof) break;
      const consumed = cuts[keep] ?? filled;
      buf.copy(buf, 0, consumed, filled);
      carried = filled - consumed;
      base += consumed;
    }
    return chunks;
  } finally {
    await fh.close();
  }
}

/**
 * The release of the same artifact the import station holds (its receipts' inventory) and this station still has
 * the bytes of: the newest one added. Null when there is none.
 */
export function chooseBase(home: RelayHome, row: ArtifactRow, inventory: ReadonlySet<string>): ArtifactRow | null {
  const candidates = otherReleases(home.db, row.name, row.sha256);
  for (const c of candidates) {
    if (!inventory.has(c.sha256)) continue;
    const st = fs.statSync(blobPath(home, c.sha256), { throwIfNoEntry: false });
    if (st?.isFile() && st.size === c.size) return c;
  }
  return null;
}

const PACKED = 4 + 32;

/** A cached chunk list; one that is not whole packed entries is cut again (below), not refused. */
const chunkLists = storedRows(
  'chunk_lists',
  z.object({ chunks: z.instanceof(Buffer) }),
  'remove the chunk_lists rows of that blob: they are cut again at the next export',
);

/** The chunks of a blob of the catalog: from the cache, or cut now and cached (a blob's bytes never change). */
export async function blobChunks(home: RelayHome, sha256: string, params: ChunkParams): Promise<Chunk[]> {
  const row = chunkLists.get(
    home.db,
    'SELECT chunks FROM chunk_lists WHERE sha256 = ? AND avg = ?',
    sha256,
    params.avg,
  );
  if (row && row.chunks.length % PACKED === 0) {
    const chunks: Chunk[] = [];
    let offset = 0;
    for (let at = 0; at < row.chunks.length; at += PACKED) {
      const size = row.chunks.readUInt32BE(at);
      chunks.push({ offset, size, sha256: row.chunks.toString('hex', at + 4, at + PACKED) });
      offset += size;
    }
    return chunks;
  }
  const chunks = await chunkFile(blobPath(home, sha256), params);
  const packed = Buffer.alloc(chunks.length * PACKED);
  chunks.forEach((c, i) => {
    packed.writeUInt32BE(c.size, i * PACKED);
    packed.write(c.sha256, i * PACKED + 4, 'hex');
  });
  home.db
    .prepare('INSERT OR REPLACE INTO chunk_lists (sha256, avg, chunks) VALUES (?, ?, ?)')
    .run(sha256, params.avg, packed);
  return chunks;
}

/** A delta is used only when it carries at most this share of the artifact (else the whole artifact travels). */
export const WORTHWHILE = 0.8;

/** The delta of `row` against `base`, or null when it would not save enough (or needs too many ops). */
export async function deltaAgainst(home: RelayHome, row: ArtifactRow, base: ArtifactRow): Promise<Delta | null> {
  const params = chunkParams(Math.max(row.size, base.size));
  const baseChunks = await blobChunks(home, base.sha256, params);
  const targetChunks = await blobChunks(home, row.sha256, params);
  const recipe = await refineInPlace(
    buildRecipe(baseChunks, targetChunks),
    blobPath(home, base.sha256),
    blobPath(home, row.sha256),
    base.size,
  );
  if (recipe.ops.length > LIMITS.deltaOps || recipe.carried > row.size * WORTHWHILE || row.size === 0) return null;
  return {
    base: { name: base.name, version: base.version, size: base.size, sha256: base.sha256 },
    ops: recipe.ops,
  };
}

/** What a delta saves, for the export summary and `--plan`. */
export interface DeltaSummary {
  /** The base release, `name@version`, that the import station already holds. */
  base: string;
  /** Bytes of the artifact that travel. */
  carried: number;
  /** Bytes that stay off the media. */
  saved: number;
  ops: number;
}

/**
 * Turns the artifacts of an export into deltas where the import station's receipts say it holds an earlier release
 * (same name) that this station also still has. Without a receipt from the site, or with `off`, nothing changes.
 * `deltas[i]` describes `artifacts[i]` (undefined: it travels whole).
 */
export async function withDeltas(
  home: RelayHome,
  site: string,
  rows: readonly ArtifactRow[],
  artifacts: Artifact[],
  off: boolean,
): Promise<{ artifacts: Artifact[]; deltas: Array<DeltaSummary | undefined> }> {
  const ack = off ? null : acknowledgement(home.db, site, home.station);
  const deltas: Array<DeltaSummary | undefined> = artifacts.map(() => undefined);
  if (!ack) return { artifacts, deltas };
  const out = [...artifacts];
  for (const [i, row] of rows.entries()) {
    const a = out[i];
    if (!a || a.type !== 'vm-image' || row.type !== 'vm-image') continue;
    const base = chooseBase(home, row, ack.inventory);
    if (!base) continue;
    const delta = await deltaAgainst(home, row, base);
    if (!delta) continue;
    out[i] = { ...a, delta };
    const carried = transferSize(out[i]);
    deltas[i] = { base: subjectName(base), carried, saved: a.size - carried, ops: delta.ops.length };
  }
  // Recipes live in the signed statement: keep it well inside its bound, dropping the longest recipes first.
  const budget = LIMITS.statementBytes / 2;
  const weight = () =>
    out.reduce((n, a) => {
      const d = deltaOf(a);
      return n + (d ? JSON.stringify(d).length : 0);
    }, 0);
  const opsOf = (a: Artifact | undefined) => (a ? (deltaOf(a)?.ops.length ?? 0) : 0);
  while (weight() > budget) {
    let worst = -1;
    out.forEach((a, i) => {
      if (deltaOf(a) && (worst < 0 || opsOf(a) > opsOf(out[worst]))) worst = i;
    });
    const w = out[worst];
    if (!w || w.type !== 'vm-image') break;
    const { delta: _dropped, ...whole } = w;
    out[worst] = whole;
    deltas[worst] = undefined;
  }
  return { artifacts: out, deltas };
}
