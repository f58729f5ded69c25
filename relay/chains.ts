/**
 * The chain of bundles this export station wrote for each destination site: every site has its own sequence (1, 2,
 * 3 ...) and each bundle names the site's previous one. Bundles replaced by `export --replace N` leave the chain and
 * are kept in `superseded_exports`.
 */
import { z } from 'zod';
import { storedRows } from '../sneakernet/stored-rows.js';
import type { RelayDb } from './relay-db.js';

const ADVICE = 'restore the station home from its last backup: the record of what was exported is damaged';

/** A row of `exports`: one bundle written for a site (its statement kept so that it can be resent as it was). */
const exportRow = z.object({
  site: z.string(),
  sequence: z.number().int().positive(),
  bundle_id: z.string(),
  statement_sha256: z.string(),
  created: z.string(),
  expires: z.string(),
  media: z.string(),
  volumes: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  /** Null for bundles written before statements were kept. */
  statement: z.union([z.instanceof(Buffer), z.string().transform((t) => Buffer.from(t, 'utf8'))]).nullish(),
  media_bytes: z.number().int().nonnegative().nullish(),
});
export type ExportRow = z.output<typeof exportRow>;
const written = storedRows('exports', exportRow, ADVICE);
const siteRow = storedRows('exports', z.object({ site: z.string() }), ADVICE);
const carriedRow = storedRows('bundle_artifacts', z.object({ artifact_id: z.number().int() }), ADVICE);

export function exportAt(db: RelayDb, site: string, sequence: number): ExportRow | undefined {
  return written.get(db, 'SELECT * FROM exports WHERE site = ? AND sequence = ?', site, sequence);
}

/** Bundle `sequence` of every site that has one, by site. */
export function exportsNumbered(db: RelayDb, sequence: number): ExportRow[] {
  return written.all(db, 'SELECT * FROM exports WHERE sequence = ? ORDER BY site', sequence);
}

/** The site's newest bundle (below `before` when given). */
export function lastExport(db: RelayDb, site: string, before = Number.MAX_SAFE_INTEGER): ExportRow | undefined {
  return written.get(
    db,
    'SELECT * FROM exports WHERE site = ? AND sequence < ? ORDER BY sequence DESC LIMIT 1',
    site,
    before,
  );
}

/** Every bundle of the site's chain, oldest first. */
export function chainOf(db: RelayDb, site: string): ExportRow[] {
  return written.all(db, 'SELECT * FROM exports WHERE site = ? ORDER BY sequence', site);
}

/** Every site this station has written for or taken a receipt from. */
export function knownSites(db: RelayDb): string[] {
  return siteRow
    .all(db, 'SELECT site FROM exports UNION SELECT site FROM receipts UNION SELECT site FROM receipt_keys ORDER BY 1')
    .map((r) => r.site);
}

/** Artifact ids each bundle carried. */
export function carriedBy(db: RelayDb, bundleId: string): number[] {
  return carriedRow
    .all(db, 'SELECT artifact_id FROM bundle_artifacts WHERE bundle_id = ?', bundleId)
    .map((r) => r.artifact_id);
}

export function recordExport(db: RelayDb, row: ExportRow & { statement: Buffer }, artifactIds: number[]): void {
  db.prepare(
    `INSERT INTO exports (site, sequence, bundle_id, statement_sha256, created, expires, media, volumes, bytes,
     statement, media_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    row.site,
    row.sequence,
    row.bundle_id,
    row.statement_sha256,
    row.created,
    row.expires,
    row.media,
    row.volumes,
    row.bytes,
    row.statement,
    row.media_bytes ?? null,
  );
  const carried = db.prepare('INSERT OR IGNORE INTO bundle_artifacts (bundle_id, artifact_id) VALUES (?, ?)');
  for (const id of artifactIds) carried.run(row.bundle_id, id);
}

/** Records the site's bundles `from` and after as superseded by `by`; they leave its chain. */
export function supersede(db: RelayDb, site: string, from: number, by: string, at: string): ExportRow[] {
  const old = written.all(db, 'SELECT * FROM exports WHERE site = ? AND sequence >= ? ORDER BY sequence', site, from);
  const keep = db.prepare(
    `INSERT INTO superseded_exports (sequence, bundle_id, statement_sha256, site, created, superseded_at, superseded_by)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const r of old) keep.run(r.sequence, r.bundle_id, r.statement_sha256, r.site, r.created, at, by);
  db.prepare('DELETE FROM exports WHERE site = ? AND sequence >= ?').run(site, from);
  return old;
}
