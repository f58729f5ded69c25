/**
 * Appends audit events. Every step of an import and every decision lands here, in the same transaction as the change
 * it describes (or alone, for a refusal, when nothing else changes). Issue 6 turns this table into a Merkle log.
 */
import type { Db } from './db.js';

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

export function appendAudit(db: Db, e: AuditEvent): void {
  db.prepare(
    `INSERT INTO audit (at, kind, outcome, code, message, bundle_id, station, artifact, media, details)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    e.at ?? new Date().toISOString(),
    e.kind,
    e.outcome,
    e.code ?? null,
    e.message,
    e.bundleId ?? null,
    e.station ?? null,
    e.artifact ?? null,
    e.media ?? null,
    JSON.stringify(e.details ?? {}),
  );
}
