/**
 * The log's stored tree: one `audit_leaf` row per event and the append frontier in `audit_tree`. Homes set up before
 * the log was a Merkle tree are brought in on first use: every existing event becomes a leaf, in `seq` order.
 */
import type { Db } from '../db.js';
import { stmt } from './statements.js';
import { AUDIT_COLUMNS, eventLeaf, type AuditRecord } from './canonical.js';
import { appendLeaf, emptyFrontier, parseFrontier, serializeFrontier, type Frontier } from './merkle.js';

export function readFrontier(db: Db): Frontier {
  const r = stmt(db, 'SELECT size, frontier FROM audit_tree WHERE id = 1').get() as
    { size: number; frontier: string } | undefined;
  return r ? parseFrontier(r.size, r.frontier) : emptyFrontier();
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
  const last = stmt(db, 'SELECT max(seq) AS s FROM audit_leaf').get() as { s: number | null };
  const page = stmt(db, `SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT 5000`);
  const insert = stmt(db, 'INSERT INTO audit_leaf (idx, seq, leaf) VALUES (?, ?, ?)');
  let after = last.s ?? 0;
  let added = 0;
  // in pages (.all, not .iterate): better-sqlite3 allows no write while a read is open on the connection
  for (;;) {
    const rows = page.all(after) as AuditRecord[];
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
  const last = stmt(db, 'SELECT max(seq) AS s FROM audit_leaf').get() as { s: number | null };
  const prior = stmt(db, 'SELECT count(*) AS n FROM audit WHERE seq > ? AND seq < ?').get(last.s ?? 0, r.seq) as {
    n: number;
  };
  if (prior.n > 0) {
    // events written before the log was a tree (or by an older build): bring them in first, in order
    addLeaves(db);
    return;
  }
  const leaf = eventLeaf(r);
  stmt(db, 'INSERT INTO audit_leaf (idx, seq, leaf) VALUES (?, ?, ?)').run(f.size, r.seq, leaf);
  appendLeaf(f, leaf);
  writeFrontier(db, f);
}
