/**
 * The import decisions read back from the audit log (`import.accepted`, `import.refused`, `import.interrupted`, and
 * the self-update outcomes): the status line, the web overview, the receipt's refusals, what a gap in a chain says,
 * and the delta bases a refused bundle still needs. Each row checked against its schema (events.ts).
 */
import { z } from 'zod';
import type { ReadConnection } from '../../sneakernet/stored-rows.js';
import { AUDIT_COLUMNS, auditRows, loggedEvents, optionalText, type AuditRecord } from './events.js';

const text = z.string();

/** The import decisions since `since` (ISO time), newest first: the overview's "since yesterday". */
export function decisionsSince(db: ReadConnection, since: string): AuditRecord[] {
  return loggedEvents.all(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit
     WHERE kind IN ('import.accepted', 'import.refused') AND at >= ? ORDER BY seq DESC LIMIT 200`,
    since,
  );
}

/** The last import decision, whoever made it (the daemon or the CLI). */
export function lastDecision(db: ReadConnection): AuditRecord | undefined {
  return loggedEvents.get(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit
     WHERE kind IN ('import.accepted', 'import.refused', 'import.interrupted') ORDER BY seq DESC LIMIT 1`,
  );
}

/**
 * The last outcome of a self-update the root installer reported (verifier/update-results.ts): `update.installed`,
 * `update.failed`, `update.rolled-back`, `update.rollback-failed`, `update.refused` or `update.result-unreadable`.
 */
export function lastUpdateOutcome(db: ReadConnection): AuditRecord | undefined {
  return loggedEvents.get(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit
     WHERE kind IN ('update.installed', 'update.failed', 'update.rolled-back', 'update.rollback-failed',
                    'update.refused', 'update.result-unreadable')
     ORDER BY seq DESC LIMIT 1`,
  );
}

/** The last `limit` refusals, newest first (a receipt carries them out). */
export function recentRefusals(db: ReadConnection, limit: number): AuditRecord[] {
  return loggedEvents.all(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit WHERE kind = 'import.refused' ORDER BY seq DESC LIMIT ?`,
    limit,
  );
}

/** A bundle's sequence as its refusal recorded it (JSON may hold it as a number or as text). */
const sequence = z.union([z.number(), z.string()]);
const refusalOfSequence = auditRows(z.object({ station: text, sequence, code: optionalText }));

/** The last refusal here of each (station, sequence), newest wins: what a gap says about the bundle missing. */
export function lastRefusalCodes(db: ReadConnection): Map<string, string> {
  const rows = refusalOfSequence.all(
    db,
    `SELECT station, json_extract(details, '$.sequence') AS sequence, code, max(seq) AS last FROM audit
     WHERE kind = 'import.refused' AND station IS NOT NULL AND json_extract(details, '$.sequence') IS NOT NULL
     GROUP BY station, json_extract(details, '$.sequence')`,
  );
  return new Map(rows.map((r) => [`${r.station}\n${r.sequence}`, r.code ?? 'E_INTERNAL']));
}

const refusalTime = auditRows(z.object({ at: text, code: optionalText }));

/** When bundle `sequence` of `station` was last refused here, and why (to explain a gap). */
export function lastRefusalOf(db: ReadConnection, station: string, seq: number): { at: string; code: string } | null {
  const r = refusalTime.get(
    db,
    `SELECT at, code FROM audit WHERE kind = 'import.refused' AND station = ? AND json_extract(details, '$.sequence') = ?
     ORDER BY seq DESC LIMIT 1`,
    station,
    seq,
  );
  return r ? { at: r.at, code: r.code ?? 'E_INTERNAL' } : null;
}

// Delta bases still needed (accepted-state.ts)

const detailsOnly = auditRows(z.object({ details: text }));

/** The details of the `import.accepted` event of a bundle, if it was accepted here. */
export function acceptedDetails(db: ReadConnection, bundleId: string): string | undefined {
  return detailsOnly.get(
    db,
    "SELECT details FROM audit WHERE bundle_id = ? AND kind = 'import.accepted' ORDER BY seq DESC LIMIT 1",
    bundleId,
  )?.details;
}

const refusedWithBases = auditRows(
  z.object({
    station: text,
    sequence: z.union([z.number(), z.string()]).nullable(),
    code: optionalText,
    details: text,
  }),
);

/** The newest refusals (at most 1000) of bundles that travelled as deltas, newest first. */
export function refusalsWithDeltaBases(
  db: ReadConnection,
): Array<{ station: string; sequence: number | string | null; code: string | null; details: string }> {
  return refusedWithBases.all(
    db,
    `SELECT station, json_extract(details, '$.sequence') AS sequence, code, details FROM audit
     WHERE kind = 'import.refused' AND station IS NOT NULL AND json_extract(details, '$.deltaBases[0]') IS NOT NULL
     ORDER BY seq DESC LIMIT 1000`,
  );
}
