/**
 * Chunk lists the station has checked (docs/FORMAT.md 4.11 lists; this table is the export station's own, not on the
 * media). A list computed from the same bytes, in the same pass, as the catalog's sha256 is the list of the catalog's
 * bytes: `relay add` computes the writer's list beside sha256, sha512 and md5 as it copies the vendor's file in; an
 * export that hashed an image whole against the catalog's sha256 (an image added before lists were kept at add) keeps
 * the list it made in that pass. An export of an image with a kept list checks its bytes against the list instead of
 * hashing them whole again — one SHA-256 pass fewer, the same guarantee (equal chunk digests are equal bytes). A list
 * is keyed by the image's sha256 and its chunk size (the writer's size depends on the image's size only): it can never
 * describe other bytes.
 *
 * All of the table's SQL.
 */
import { z } from 'zod';
import { chunkCount, type Chunks } from '../sneakernet/chunk-list.js';
import type { Artifact } from '../sneakernet/statement.js';
import { storedRows } from '../sneakernet/stored-rows.js';
import type { RelayDb } from './relay-db.js';

export const CHECKED_CHUNK_LISTS_TABLE = `
-- Chunk lists (FORMAT 4.11) checked against the catalog's sha256 by an export (relay/checked-chunk-lists.ts):
-- \`digests\` packs the SHA-256 of each chunk (32 bytes each), in order.
CREATE TABLE IF NOT EXISTS checked_chunk_lists (
  sha256      TEXT NOT NULL,
  chunk_size  INTEGER NOT NULL,
  digests     BLOB NOT NULL,
  checked_at  TEXT NOT NULL,
  PRIMARY KEY (sha256, chunk_size)
);`;

const rows = storedRows(
  'checked_chunk_lists',
  z.object({ digests: z.instanceof(Buffer) }),
  'delete the checked_chunk_lists rows: the next export hashes the images whole again and lists them anew',
);

/** A list worth reusing: which artifact (statement index), its chunk size, and its digests as hex, concatenated. */
export interface CheckedList {
  artifact: number;
  chunkSize: number;
  sha256: string;
}

/**
 * The checked lists of the artifacts the writer lists with `sizes` (artifact index → chunk size), for images only (an
 * OCI image's carried stream is checked against its stored blobs, not the catalog's sha256). A row that is not one
 * digest per chunk is ignored: that image is then hashed whole, as if it had never been exported.
 */
export function checkedListsFor(
  db: RelayDb,
  artifacts: readonly Artifact[],
  sizes: ReadonlyMap<number, number>,
): Map<number, CheckedList> {
  const found = new Map<number, CheckedList>();
  for (const [k, chunkSize] of sizes) {
    const a = artifacts[k];
    if (!a || a.type === 'oci-image') continue;
    const row = rows.get(
      db,
      'SELECT digests FROM checked_chunk_lists WHERE sha256 = ? AND chunk_size = ?',
      a.sha256,
      chunkSize,
    );
    if (row && row.digests.length === 32 * chunkCount(a.size, chunkSize)) {
      found.set(k, { artifact: k, chunkSize, sha256: row.digests.toString('hex') });
    }
  }
  return found;
}

/** Keeps lists proven in this export (call inside the transaction that records it); a list already kept stays. */
export function keepCheckedLists(
  db: RelayDb,
  artifacts: readonly Artifact[],
  lists: readonly CheckedList[],
  at: string,
): void {
  for (const l of lists) {
    const a = artifacts[l.artifact];
    if (a) keepCheckedList(db, a.sha256, { size: l.chunkSize, sha256: l.sha256 }, at);
  }
}

/**
 * Keeps the list of the bytes whose SHA-256 is `sha256`, computed in the same pass as that digest (relay add); a list
 * already kept stays. A list that is not one digest per chunk of a whole number of chunks is not kept.
 */
export function keepCheckedList(db: RelayDb, sha256: string, chunks: Chunks, at: string): void {
  if (chunks.sha256.length === 0 || chunks.sha256.length % 64 !== 0) return;
  db.prepare(
    'INSERT OR IGNORE INTO checked_chunk_lists (sha256, chunk_size, digests, checked_at) VALUES (?, ?, ?, ?)',
  ).run(sha256, chunks.size, Buffer.from(chunks.sha256, 'hex'), at);
}
