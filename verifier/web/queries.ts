/**
 * The web view's reads. The timeline uses keyset pagination on `seq` (never OFFSET), with every filter served by an
 * index `(column, seq)` from verifier/audit/schema.ts, so the first and the millionth page cost the same.
 */
import type { Db } from '../db.js';
import { AUDIT_COLUMNS, type AuditRecord } from '../audit/canonical.js';

export const PAGE_SIZE = 50;

export interface TimelineFilter {
  kind?: string;
  outcome?: string;
  bundle?: string;
  artifact?: string;
  media?: string;
  from?: string;
  to?: string;
}

export const FILTER_KEYS = ['kind', 'outcome', 'bundle', 'artifact', 'media', 'from', 'to'] as const;

export interface TimelinePage {
  rows: AuditRecord[];
  /** seq to pass as `before` for older events, or null at the end. */
  older: number | null;
  /** seq to pass as `after` for newer events, or null at the start. */
  newer: number | null;
}

export function filterFrom(params: URLSearchParams): TimelineFilter {
  const f: TimelineFilter = {};
  for (const k of FILTER_KEYS) {
    const v = params.get(k)?.trim();
    if (v) f[k] = v.slice(0, 500);
  }
  return f;
}

function where(f: TimelineFilter): { sql: string[]; args: unknown[] } {
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

export function timeline(
  db: Db,
  f: TimelineFilter,
  page: { before?: number; after?: number },
  size = PAGE_SIZE,
): TimelinePage {
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
  const sql = `SELECT ${AUDIT_COLUMNS} FROM audit ${w.sql.length ? `WHERE ${w.sql.join(' AND ')}` : ''}
    ORDER BY seq ${newerFirst ? 'DESC' : 'ASC'} LIMIT ?`;
  const got = db.prepare(sql).all(...w.args, size + 1) as AuditRecord[];
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
export function* allEvents(db: Db, f: TimelineFilter): Generator<AuditRecord> {
  const w = where(f);
  yield* db
    .prepare(`SELECT ${AUDIT_COLUMNS} FROM audit ${w.sql.length ? `WHERE ${w.sql.join(' AND ')}` : ''} ORDER BY seq`)
    .iterate(...w.args) as IterableIterator<AuditRecord>;
}

let kindsCache: { at: number; kinds: string[] } | null = null;

/** The distinct event kinds (for the filter), refreshed at most once a minute. */
export function eventKinds(db: Db): string[] {
  if (kindsCache && Date.now() - kindsCache.at < 60_000) return kindsCache.kinds;
  const kinds: string[] = [];
  let k = db.prepare('SELECT min(kind) AS k FROM audit').get() as { k: string | null };
  const next = db.prepare('SELECT min(kind) AS k FROM audit WHERE kind > ?');
  while (k.k !== null && kinds.length < 200) {
    kinds.push(k.k);
    k = next.get(k.k) as { k: string | null };
  }
  kindsCache = { at: Date.now(), kinds };
  return kinds;
}

export interface BundleRow {
  bundle_id: string;
  station: string;
  sequence: number;
  statement_sha256: string;
  created: string;
  expires: string;
  signers: string;
  imported_at: string;
}

export function bundleRecord(db: Db, id: string): BundleRow | undefined {
  return db.prepare('SELECT * FROM bundles WHERE bundle_id = ?').get(id) as BundleRow | undefined;
}

export function bundleEvents(db: Db, id: string): AuditRecord[] {
  return db
    .prepare(`SELECT ${AUDIT_COLUMNS} FROM audit WHERE bundle_id = ? ORDER BY seq LIMIT 2000`)
    .all(id) as AuditRecord[];
}

export interface ImageHistoryRow {
  id: string;
  name: string | null;
  artifact_version: string | null;
  bundle_id: string | null;
  sha256: string | null;
  size: number | null;
  disk_format: string | null;
  os_hidden: number;
  status: string;
  created_at: string;
}

export function artifactImages(db: Db, name: string): ImageHistoryRow[] {
  return db
    .prepare(
      `SELECT id, name, artifact_version, bundle_id, sha256, size, disk_format, os_hidden, status, created_at
       FROM images WHERE artifact_name = ? ORDER BY created_at DESC, id LIMIT 500`,
    )
    .all(name) as ImageHistoryRow[];
}

export function artifactNames(db: Db): Array<{ name: string; versions: number; latest: string }> {
  return db
    .prepare(
      `SELECT artifact_name AS name, count(*) AS versions, max(created_at) AS latest FROM images
       WHERE artifact_name IS NOT NULL GROUP BY artifact_name ORDER BY artifact_name LIMIT 1000`,
    )
    .all() as Array<{ name: string; versions: number; latest: string }>;
}
