/**
 * The log's stored tree: one `audit_leaf` row per event and the append frontier in `audit_tree`. Homes set up before
 * the log was a Merkle tree are brought in on first use: every existing event becomes a leaf, in `seq` order.
 */
import { z } from 'zod';
import { storedRows, type ReadConnection } from '../../sneakernet/stored-rows.js';
import type { Db } from '../db.js';
import { stmt } from './statements.js';
import { eventLeaf, type AuditRecord } from './canonical.js';
import { eventsAfter, eventsBetween } from './events.js';
import { appendLeaf, emptyFrontier, parseFrontier, serializeFrontier, type Frontier } from './merkle.js';

const ADVICE = 'run "ecluse audit verify" to see where the log was changed, and keep the database for analysis';
const count = z.number().int().nonnegative();

const frontierRow = storedRows(
  'audit_tree',
  z.object({ size: count, frontier: z.string() }),
  ADVICE,
  'E_AUDIT_TAMPERED',
);

export function readFrontier(db: Db): Frontier {
  const r = frontierRow.get(db, 'SELECT size, frontier FROM audit_tree WHERE id = 1');
  return r ? parseFrontier(r.size, r.frontier) : emptyFrontier();
}

const lastSeq = storedRows('audit_leaf', z.object({ s: count.nullable() }), ADVICE, 'E_AUDIT_TAMPERED');

/** The `seq` of the last event the tree covers (0 for an empty tree). */
function lastLeafSeq(db: Db): number {
  return lastSeq.get(db, 'SELECT max(seq) AS s FROM audit_leaf')?.s ?? 0;
}

const leafOnly = storedRows('audit_leaf', z.object({ leaf: z.instanceof(Buffer) }), ADVICE, 'E_AUDIT_TAMPERED');

/** The leaf hashes of the first `size` leaves, in order (an export proves its checkpoint from them). */
export function leafHashes(db: Db, size: number): Buffer[] {
  return leafOnly.all(db, 'SELECT leaf FROM audit_leaf WHERE idx < ? ORDER BY idx', size).map((r) => r.leaf);
}

const leafIndex = storedRows('audit_leaf', z.object({ idx: count }), ADVICE, 'E_AUDIT_TAMPERED');

/** Another index holding this very leaf hash (an event moved there), if any. */
export function otherIndexOfLeaf(db: Db, leaf: Buffer, index: number): number | undefined {
  return leafIndex.get(db, 'SELECT idx FROM audit_leaf WHERE leaf = ? AND idx <> ? LIMIT 1', leaf, index)?.idx;
}

/**
 * Every leaf in index order with the event it was logged for, as stored (`event` is the raw row, checked by the
 * verifier, which says which event was edited; null when the event is gone).
 */
const leafWithEvent = z.looseObject({
  idx: count,
  leaf_seq: count,
  leaf: z.instanceof(Buffer),
  a_seq: count.nullable(),
});
const leafRows = storedRows('audit_leaf', leafWithEvent, ADVICE, 'E_AUDIT_TAMPERED');

export function* leavesWithEvents(
  db: ReadConnection,
): Generator<{ idx: number; leafSeq: number; leaf: Buffer; event: Record<string, unknown> | null }> {
  for (const r of leafRows.iterate(
    db,
    `SELECT l.idx, l.seq AS leaf_seq, l.leaf, a.seq AS a_seq, a.seq, a.at, a.kind, a.outcome, a.code, a.message,
            a.bundle_id, a.station, a.artifact, a.media, a.details
     FROM audit_leaf l LEFT JOIN audit a ON a.seq = l.seq ORDER BY l.idx`,
  )) {
    yield { idx: r.idx, leafSeq: r.leaf_seq, leaf: r.leaf, event: r.a_seq === null ? null : r };
  }
}

function writeFrontier(db: Db, f: Frontier): void {
  stmt(
    db,
    `INSERT INTO audit_tree (id, size, frontier) VALUES (1, ?, ?)
     ON CONFLICT(id) DO UPDATE SET size = excluded.size, frontier = excluded.frontier`,
  ).run(f.size, serializeFrontier(f));
}

/** Adds the events with `seq` above the last leaf as leaves (call inside a transaction). */
export function addLeaves(db: Db): number {
  const f = readFrontier(db);
  const insert = stmt(db, 'INSERT INTO audit_leaf (idx, seq, leaf) VALUES (?, ?, ?)');
  let after = lastLeafSeq(db);
  let added = 0;
  // in pages (.all, not .iterate): better-sqlite3 allows no write while a read is open on the connection
  for (;;) {
    const rows = eventsAfter(db, after, 5000);
    for (const r of rows) {
      const leaf = eventLeaf(r);
      insert.run(f.size, r.seq, leaf);
      appendLeaf(f, leaf);
      after = r.seq;
      added++;
    }
    if (rows.length < 5000) break;
  }
  if (added > 0) writeFrontier(db, f);
  return added;
}

/** Appends exactly one event that was just inserted with `seq`, as leaf `size`. O(log n). */
export function addLeaf(db: Db, r: AuditRecord): void {
  const f = readFrontier(db);
  if (eventsBetween(db, lastLeafSeq(db), r.seq) > 0) {
    // events written before the log was a tree (or by an older build): bring them in first, in order
    addLeaves(db);
    return;
  }
  const leaf = eventLeaf(r);
  stmt(db, 'INSERT INTO audit_leaf (idx, seq, leaf) VALUES (?, ?, ?)').run(f.size, r.seq, leaf);
  appendLeaf(f, leaf);
  writeFrontier(db, f);
}

const extent = storedRows(
  'audit_leaf',
  z.object({ l: count.nullable(), s: count.nullable(), c: count.nullable() }),
  ADVICE,
  'E_AUDIT_TAMPERED',
);

/**
 * The newest leaf index, event seq and checkpoint id: a log whose three are unchanged has not changed (the web view
 * verifies the log again only when they move).
 */
export function logExtent(db: ReadConnection): { l: number | null; s: number | null; c: number | null } {
  return (
    extent.get(
      db,
      'SELECT (SELECT max(idx) FROM audit_leaf) AS l, (SELECT max(seq) FROM audit) AS s, (SELECT max(id) FROM audit_checkpoint) AS c',
    ) ?? { l: null, s: null, c: null }
  );
}
