/**
 * Chunk lists the station has checked (docs/FORMAT.md 4.11 lists; this table is the export station's own, not on the
 * media). An export hashes each image's bytes twice as it writes them: whole, against the catalog's sha256 (the check
 * that a byte changed in the store since `relay add` is never signed), and chunk by chunk, into the list the statement
 * carries. When both came from the same bytes of one pass and the whole digest matched, the list is the list of the
 * catalog's bytes: it is kept here, and a later export of the same image (another site, a later bundle) checks its
 * bytes against this list instead of hashing them whole again — one SHA-256 pass fewer, the same guarantee (equal
 * chunk digests are equal bytes). A list is keyed by the image's sha256 and its chunk size (the writer's size depends
 * on the image's size only): it can never describe other bytes.
 *
 * All of the table's SQL.
 */
import { z } from 'zod';
import { chunkCount } from '../sneakernet/chunk-list.js';
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
  const insert = db.prepare(
    'INSERT OR IGNORE INTO checked_chunk_lists (sha256, chunk_size, digests, checked_at) VALUES (?, ?, ?, ?)',
  );
  for (const l of lists) {
    const a = artifacts[l.artifact];
    if (a) insert.run(a.sha256, l.chunkSize, Buffer.from(l.sha256, 'hex'), at);
  }
}
