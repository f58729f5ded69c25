/**
 * The `audit` table read back: what a logged event is (`auditEventRow`), the web view's timeline and pages, and the
 * Merkle tree's catch-up; the import decisions are read by decisions.ts, the media sessions by media-events.ts, each
 * row checked against its schema. Writing is log.ts's job (one append, with its leaf and checkpoint). A logged event
 * that is not what the schema says was not written by écluse: E_AUDIT_TAMPERED, and `ecluse audit verify` names where.
 */
import { z } from 'zod';
import { storedRows, type ReadConnection, type StoredRows } from '../../sneakernet/stored-rows.js';

const ADVICE = 'run "ecluse audit verify" to see which event was changed, and keep the database for analysis';

const text = z.string();
export const optionalText = z.string().nullable();

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

/** Rows of the `audit` table read as `schema` says; one that is not was not written by écluse (E_AUDIT_TAMPERED). */
export function auditRows<S extends z.ZodType>(schema: S): StoredRows<z.output<S>> {
  return storedRows('audit', schema, ADVICE, 'E_AUDIT_TAMPERED');
}

/** Whole logged events. */
export const loggedEvents = auditRows(auditEventRow);

// ----------------------------------------------------------------------------------------------------------------
// The log's own upkeep (tree.ts, verify.ts)

/** Up to `limit` events logged after `seq`, in order. */
export function eventsAfter(db: ReadConnection, seq: number, limit: number): AuditRecord[] {
  return loggedEvents.all(db, `SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit);
}

const count = auditRows(z.object({ n: z.number().int().nonnegative() }));

/** How many events have a `seq` strictly between the two. */
export function eventsBetween(db: ReadConnection, after: number, before: number): number {
  return count.get(db, 'SELECT count(*) AS n FROM audit WHERE seq > ? AND seq < ?', after, before)?.n ?? 0;
}

/** The first event no leaf of the Merkle tree covers (one inserted behind the log's back), if any. */
export function firstUnloggedEvent(db: ReadConnection): AuditRecord | undefined {
  return loggedEvents.get(
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
  const got = loggedEvents.all(db, sql, ...w.args, size + 1);
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
  yield* loggedEvents.iterate(db, `SELECT ${AUDIT_COLUMNS} FROM audit ${whereClause(w.sql)} ORDER BY seq`, ...w.args);
}

const lowest = auditRows(z.object({ v: optionalText }));

/** The distinct values of an indexed column, in order, at most `limit` (one index step each: a skip scan). */
export function distinctValues(db: ReadConnection, column: 'kind' | 'media', limit: number): string[] {
  const out: string[] = [];
  let v = lowest.get(db, `SELECT min(${column}) AS v FROM audit WHERE ${column} IS NOT NULL`)?.v ?? null;
  while (v !== null && out.length < limit) {
    out.push(v);
    v = lowest.get(db, `SELECT min(${column}) AS v FROM audit WHERE ${column} > ?`, v)?.v ?? null;
  }
  return out;
}

/** The distinct event kinds, at most `limit`. */
export function distinctKinds(db: ReadConnection, limit: number): string[] {
  return distinctValues(db, 'kind', limit);
}

/** The events of one bundle, in order. */
export function bundleEvents(db: ReadConnection, bundleId: string): AuditRecord[] {
  return loggedEvents.all(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit WHERE bundle_id = ? ORDER BY seq LIMIT 2000`,
    bundleId,
  );
}

/** The events about any version of an artifact, newest first. */
export function artifactEvents(db: ReadConnection, name: string): AuditRecord[] {
  return loggedEvents.all(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit WHERE artifact >= ? AND artifact < ? ORDER BY seq DESC LIMIT 200`,
    `${name}@`,
    `${name}@\uffff`,
  );
}

// ----------------------------------------------------------------------------------------------------------------
// Exports (export.ts): the events under leaves [from, to), with their index in the tree

const indexedEvent = auditRows(auditEventRow.extend({ idx: z.number().int().nonnegative() }));

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
