/**
 * The `audit` table read back: every query on logged events (the web view's timeline and pages, the status line, the
 * receipt's refusals, the gaps, the Merkle tree's catch-up) lives here, each row checked against `auditEventRow`.
 * Writing is log.ts's job (one append, with its leaf and checkpoint). A logged event that is not what the schema says
 * was not written by écluse: E_AUDIT_TAMPERED, and `ecluse audit verify` names where.
 */
import { z } from 'zod';
import { storedRows, type ReadConnection } from '../../sneakernet/stored-rows.js';

const ADVICE = 'run "ecluse audit verify" to see which event was changed, and keep the database for analysis';

const text = z.string();
const optionalText = z.string().nullable();

/** A row of the `audit` table as stored. */
export const auditEventRow = z.object({
  seq: z.number().int().positive(),
  at: text,
  kind: text,
  outcome: text,
  code: optionalText,
  message: text,
  bundle_id: optionalText,
  station: optionalText,
  artifact: optionalText,
  media: optionalText,
  /** JSON text, kept as stored (the leaf hashes these exact bytes). */
  details: text,
});
export type AuditRecord = z.output<typeof auditEventRow>;

export const AUDIT_COLUMNS = 'seq, at, kind, outcome, code, message, bundle_id, station, artifact, media, details';

const events = storedRows('audit', auditEventRow, ADVICE, 'E_AUDIT_TAMPERED');

// ----------------------------------------------------------------------------------------------------------------
// The log's own upkeep (tree.ts, verify.ts)

/** Up to `limit` events logged after `seq`, in order. */
export function eventsAfter(db: ReadConnection, seq: number, limit: number): AuditRecord[] {
  return events.all(db, `SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit);
}

const count = storedRows('audit', z.object({ n: z.number().int().nonnegative() }), ADVICE, 'E_AUDIT_TAMPERED');

/** How many events have a `seq` strictly between the two. */
export function eventsBetween(db: ReadConnection, after: number, before: number): number {
  return count.get(db, 'SELECT count(*) AS n FROM audit WHERE seq > ? AND seq < ?', after, before)?.n ?? 0;
}

/** The first event no leaf of the Merkle tree covers (one inserted behind the log's back), if any. */
export function firstUnloggedEvent(db: ReadConnection): AuditRecord | undefined {
  return events.get(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq NOT IN (SELECT seq FROM audit_leaf) ORDER BY seq LIMIT 1`,
  );
}

// ----------------------------------------------------------------------------------------------------------------
// The web view's timeline: keyset pagination on `seq` (never OFFSET), every filter served by an index `(column, seq)`
// from schema.ts, so the first and the millionth page cost the same.

export interface EventFilter {
  kind?: string;
  outcome?: string;
  bundle?: string;
  artifact?: string;
  media?: string;
  from?: string;
  to?: string;
}

function where(f: EventFilter): { sql: string[]; args: unknown[] } {
  const sql: string[] = [];
  const args: unknown[] = [];
  if (f.kind) {
    if (f.kind.endsWith('.*')) {
      sql.push('kind >= ? AND kind < ?');
      args.push(f.kind.slice(0, -1), `${f.kind.slice(0, -1)}\uffff`);
    } else {
      sql.push('kind = ?');
      args.push(f.kind);
    }
  }
  if (f.outcome) {
    sql.push('outcome = ?');
    args.push(f.outcome);
  }
  if (f.bundle) {
    sql.push('bundle_id = ?');
    args.push(f.bundle);
  }
  if (f.artifact) {
    if (f.artifact.includes('@')) {
      sql.push('artifact = ?');
      args.push(f.artifact);
    } else {
      sql.push('artifact >= ? AND artifact < ?');
      args.push(`${f.artifact}@`, `${f.artifact}@\uffff`);
    }
  }
  if (f.media) {
    sql.push('media = ?');
    args.push(f.media);
  }
  if (f.from) {
    sql.push('at >= ?');
    args.push(f.from);
  }
  if (f.to) {
    sql.push('at < ?');
    args.push(f.to);
  }
  return { sql, args };
}

const whereClause = (sql: string[]) => (sql.length ? `WHERE ${sql.join(' AND ')}` : '');

export interface EventPage {
  rows: AuditRecord[];
  /** seq to pass as `before` for older events, or null at the end. */
  older: number | null;
  /** seq to pass as `after` for newer events, or null at the start. */
  newer: number | null;
}

/** One page of matching events, newest first, before or after a `seq`. */
export function eventPage(
  db: ReadConnection,
  f: EventFilter,
  page: { before?: number; after?: number },
  size: number,
): EventPage {
  const w = where(f);
  const newerFirst = page.after === undefined;
  if (page.before !== undefined) {
    w.sql.push('seq < ?');
    w.args.push(page.before);
  }
  if (page.after !== undefined) {
    w.sql.push('seq > ?');
    w.args.push(page.after);
  }
  const sql = `SELECT ${AUDIT_COLUMNS} FROM audit ${whereClause(w.sql)}
    ORDER BY seq ${newerFirst ? 'DESC' : 'ASC'} LIMIT ?`;
  const got = events.all(db, sql, ...w.args, size + 1);
  const more = got.length > size;
  const rows = got.slice(0, size);
  if (!newerFirst) rows.reverse();
  const first = rows[0];
  const last = rows[rows.length - 1];
  return {
    rows,
    older: last && (newerFirst ? more : true) ? last.seq : null,
    newer: first && (newerFirst ? page.before !== undefined : more) ? first.seq : null,
  };
}

/** Every matching event, oldest first (downloads). */
export function* matchingEvents(db: ReadConnection, f: EventFilter): Generator<AuditRecord> {
  const w = where(f);
  yield* events.iterate(db, `SELECT ${AUDIT_COLUMNS} FROM audit ${whereClause(w.sql)} ORDER BY seq`, ...w.args);
}

const kindRow = storedRows('audit', z.object({ k: optionalText }), ADVICE, 'E_AUDIT_TAMPERED');

/** The distinct event kinds, at most `limit` (one index step each: a skip scan). */
export function distinctKinds(db: ReadConnection, limit: number): string[] {
  const kinds: string[] = [];
  let k = kindRow.get(db, 'SELECT min(kind) AS k FROM audit')?.k ?? null;
  while (k !== null && kinds.length < limit) {
    kinds.push(k);
    k = kindRow.get(db, 'SELECT min(kind) AS k FROM audit WHERE kind > ?', k)?.k ?? null;
  }
  return kinds;
}

/** The events of one bundle, in order. */
export function bundleEvents(db: ReadConnection, bundleId: string): AuditRecord[] {
  return events.all(db, `SELECT ${AUDIT_COLUMNS} FROM audit WHERE bundle_id = ? ORDER BY seq LIMIT 2000`, bundleId);
}

/** The events read from one media, in order. */
export function mediaEvents(db: ReadConnection, media: string): AuditRecord[] {
  return events.all(db, `SELECT ${AUDIT_COLUMNS} FROM audit WHERE media = ? ORDER BY seq LIMIT 2000`, media);
}

/** The events about any version of an artifact, newest first. */
export function artifactEvents(db: ReadConnection, name: string): AuditRecord[] {
  return events.all(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit WHERE artifact >= ? AND artifact < ? ORDER BY seq DESC LIMIT 200`,
    `${name}@`,
    `${name}@\uffff`,
  );
}

const mediaRow = storedRows('audit', z.object({ m: optionalText }), ADVICE, 'E_AUDIT_TAMPERED');
const mediaStats = storedRows(
  'audit',
  z.object({ events: z.number().int().nonnegative(), first: text, last: text }),
  ADVICE,
  'E_AUDIT_TAMPERED',
);

/** Each media events were read from, with how many and when first and last (one index walk per media). */
export function mediaSeen(
  db: ReadConnection,
  limit: number,
): Array<{ media: string; first: string; last: string; events: number }> {
  const out: Array<{ media: string; first: string; last: string; events: number }> = [];
  let m = mediaRow.get(db, 'SELECT min(media) AS m FROM audit WHERE media IS NOT NULL')?.m ?? null;
  while (m !== null && out.length < limit) {
    const s = mediaStats.get(
      db,
      `SELECT count(*) AS events, (SELECT at FROM audit WHERE media = @m ORDER BY seq LIMIT 1) AS first,
              (SELECT at FROM audit WHERE media = @m ORDER BY seq DESC LIMIT 1) AS last FROM audit WHERE media = @m`,
      { m },
    );
    if (s) out.push({ media: m, ...s });
    m = mediaRow.get(db, 'SELECT min(media) AS m FROM audit WHERE media > ?', m)?.m ?? null;
  }
  return out;
}

// ----------------------------------------------------------------------------------------------------------------
// Import decisions (`import.accepted`, `import.refused`, `import.interrupted`)

/** The import decisions since `since` (ISO time), newest first: the overview's "since yesterday". */
export function decisionsSince(db: ReadConnection, since: string): AuditRecord[] {
  return events.all(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit
     WHERE kind IN ('import.accepted', 'import.refused') AND at >= ? ORDER BY seq DESC LIMIT 200`,
    since,
  );
}

/** The last import decision, whoever made it (the daemon or the CLI). */
export function lastDecision(db: ReadConnection): AuditRecord | undefined {
  return events.get(
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
  return events.get(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit
     WHERE kind IN ('update.installed', 'update.failed', 'update.rolled-back', 'update.rollback-failed',
                    'update.refused', 'update.result-unreadable')
     ORDER BY seq DESC LIMIT 1`,
  );
}

/** The last `limit` refusals, newest first (a receipt carries them out). */
export function recentRefusals(db: ReadConnection, limit: number): AuditRecord[] {
  return events.all(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit WHERE kind = 'import.refused' ORDER BY seq DESC LIMIT ?`,
    limit,
  );
}

/** A bundle's sequence as its refusal recorded it (JSON may hold it as a number or as text). */
const sequence = z.union([z.number(), z.string()]);
const refusalOfSequence = storedRows(
  'audit',
  z.object({ station: text, sequence, code: optionalText }),
  ADVICE,
  'E_AUDIT_TAMPERED',
);

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

const refusalTime = storedRows('audit', z.object({ at: text, code: optionalText }), ADVICE, 'E_AUDIT_TAMPERED');

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

// ----------------------------------------------------------------------------------------------------------------
// Exports (export.ts): the events under leaves [from, to), with their index in the tree

const indexedEvent = storedRows(
  'audit',
  auditEventRow.extend({ idx: z.number().int().nonnegative() }),
  ADVICE,
  'E_AUDIT_TAMPERED',
);

/** The events under leaves `from` to `to` (excluded), in log order, one at a time. */
export function eventsOfLeaves(db: ReadConnection, from: number, to: number): Generator<AuditRecord & { idx: number }> {
  return indexedEvent.iterate(
    db,
    `SELECT l.idx, ${AUDIT_COLUMNS.split(', ')
      .map((c) => `a.${c}`)
      .join(', ')}
     FROM audit_leaf l JOIN audit a ON a.seq = l.seq WHERE l.idx >= ? AND l.idx < ? ORDER BY l.idx`,
    from,
    to,
  );
}

// ----------------------------------------------------------------------------------------------------------------
// Delta bases still needed (accepted-state.ts) and media sessions (web/media-sessions.ts)

const detailsOnly = storedRows('audit', z.object({ details: text }), ADVICE, 'E_AUDIT_TAMPERED');

/** The details of the `import.accepted` event of a bundle, if it was accepted here. */
export function acceptedDetails(db: ReadConnection, bundleId: string): string | undefined {
  return detailsOnly.get(
    db,
    "SELECT details FROM audit WHERE bundle_id = ? AND kind = 'import.accepted' ORDER BY seq DESC LIMIT 1",
    bundleId,
  )?.details;
}

const refusedWithBases = storedRows(
  'audit',
  z.object({
    station: text,
    sequence: z.union([z.number(), z.string()]).nullable(),
    code: optionalText,
    details: text,
  }),
  ADVICE,
  'E_AUDIT_TAMPERED',
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

const mediaSession = storedRows(
  'audit',
  z.object({ seq: z.number().int().positive(), media: text, details: text }),
  ADVICE,
  'E_AUDIT_TAMPERED',
);

/** The last `limit` media insertions and refusals the daemon recorded, newest first. */
export function mediaInsertions(
  db: ReadConnection,
  limit: number,
): Array<{ seq: number; media: string; details: string }> {
  return mediaSession.all(
    db,
    `SELECT seq, media, details FROM audit WHERE kind IN ('media.inserted', 'media.refused') AND media IS NOT NULL
     ORDER BY seq DESC LIMIT ?`,
    limit,
  );
}

/** The events at a media path with `seq` in [from, to), in order (at most 2000). */
export function eventsAtMedia(db: ReadConnection, media: string, from: number, to: number): AuditRecord[] {
  return events.all(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit WHERE media = ? AND seq >= ? AND seq < ? ORDER BY seq LIMIT 2000`,
    media,
    from,
    to,
  );
}

const rangeStats = storedRows(
  'audit',
  z.object({ events: z.number().int().nonnegative(), first: optionalText, last: optionalText }),
  ADVICE,
  'E_AUDIT_TAMPERED',
);

/** How many events a media path has with `seq` in [from, to), and when the first and the last were. */
export function mediaRangeStats(
  db: ReadConnection,
  media: string,
  from: number,
  to: number,
): { events: number; first: string; last: string } {
  const s = rangeStats.get(
    db,
    `SELECT count(*) AS events, min(at) AS first, max(at) AS last FROM audit
     WHERE media = @m AND seq >= @from AND seq < @to`,
    { m: media, from, to },
  );
  return { events: s?.events ?? 0, first: s?.first ?? '', last: s?.last ?? '' };
}

/** The media paths the log names, in order (one index step each), at most `limit`. */
export function mediaPaths(db: ReadConnection, limit: number): string[] {
  const out: string[] = [];
  let m = mediaRow.get(db, 'SELECT min(media) AS m FROM audit WHERE media IS NOT NULL')?.m ?? null;
  while (m !== null && out.length < limit) {
    out.push(m);
    m = mediaRow.get(db, 'SELECT min(media) AS m FROM audit WHERE media > ?', m)?.m ?? null;
  }
  return out;
}
