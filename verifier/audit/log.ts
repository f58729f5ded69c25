/**
 * Appends audit events. Every step of an import and every decision lands here, in the same transaction as the change
 * it describes (or alone, for a refusal, when nothing else changes). Each event is also a leaf of the log's Merkle
 * tree (tree.ts); an `import.accepted` or `import.refused` event signs a checkpoint in the same transaction.
 */
import type { Db } from '../db.js';
import { stmt } from './statements.js';
import type { AuditRecord } from './canonical.js';
import { homeOf, signCheckpoint } from './checkpoint.js';
import { addLeaf } from './tree.js';

export type AuditOutcome = 'pass' | 'fail' | 'accepted' | 'refused' | 'info';

export interface AuditEvent {
  kind: string;
  outcome: AuditOutcome;
  message: string;
  code?: string | null;
  bundleId?: string | null;
  station?: string | null;
  artifact?: string | null;
  media?: string | null;
  details?: Record<string, unknown>;
  at?: string;
}

/**
 * Kinds after which a checkpoint is signed at once (`site.init` also makes the audit key, at install); the outcomes of
 * a self-update too (verifier/update-results.ts): a change of the station's own code is never left unsigned; and the
 * hand-over of a package that could not be placed after its bundle was accepted, placed late, or lost
 * (verifier/self-update/placing.ts).
 */
export const CHECKPOINT_KINDS: ReadonlySet<string> = new Set([
  'site.init',
  'import.accepted',
  'import.refused',
  'update.installed',
  'update.failed',
  'update.rolled-back',
  'update.rollback-failed',
  'update.refused',
  'update.hand-over-failed',
  'update.hand-over-placed',
  'update.hand-over-lost',
]);

/** Appends `e` and returns its `audit.seq`. */
export function appendAudit(db: Db, e: AuditEvent): number {
  const r: Omit<AuditRecord, 'seq'> = {
    at: e.at ?? new Date().toISOString(),
    kind: e.kind,
    outcome: e.outcome,
    code: e.code ?? null,
    message: e.message,
    bundle_id: e.bundleId ?? null,
    station: e.station ?? null,
    artifact: e.artifact ?? null,
    media: e.media ?? null,
    details: JSON.stringify(e.details ?? {}),
  };
  // BEGIN IMMEDIATE when alone: the frontier is read then written, so take the write lock first (other processes
  // append too). Nested in a caller's transaction, a savepoint keeps the row and its leaf together.
  const tx = db.transaction(() => {
    const info = stmt(
      db,
      `INSERT INTO audit (at, kind, outcome, code, message, bundle_id, station, artifact, media, details)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(r.at, r.kind, r.outcome, r.code, r.message, r.bundle_id, r.station, r.artifact, r.media, r.details);
    const seq = Number(info.lastInsertRowid);
    addLeaf(db, { seq, ...r });
    const home = homeOf(db);
    if (home && CHECKPOINT_KINDS.has(e.kind)) signCheckpoint(db, home, e.kind);
    return seq;
  });
  return db.inTransaction ? tx() : tx.immediate();
}
