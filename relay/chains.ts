/**
 * The chain of bundles this export station wrote for each destination site: every site has its own sequence (1, 2,
 * 3 ...) and each bundle names the site's previous one. Bundles replaced by `export --replace N` leave the chain and
 * are kept in `superseded_exports`.
 */
import type { ExportRow, RelayDb } from './catalog.js';

export function exportAt(db: RelayDb, site: string, sequence: number): ExportRow | undefined {
  return db.prepare('SELECT * FROM exports WHERE site = ? AND sequence = ?').get(site, sequence) as
    ExportRow | undefined;
}

/** The site's newest bundle (below `before` when given). */
export function lastExport(db: RelayDb, site: string, before = Number.MAX_SAFE_INTEGER): ExportRow | undefined {
  return db
    .prepare('SELECT * FROM exports WHERE site = ? AND sequence < ? ORDER BY sequence DESC LIMIT 1')
    .get(site, before) as ExportRow | undefined;
}

/** Every bundle of the site's chain, oldest first. */
export function chainOf(db: RelayDb, site: string): ExportRow[] {
  return db.prepare('SELECT * FROM exports WHERE site = ? ORDER BY sequence').all(site) as ExportRow[];
}

/** Every site this station has written for or taken a receipt from. */
export function knownSites(db: RelayDb): string[] {
  return (
    db
      .prepare(
        'SELECT site FROM exports UNION SELECT site FROM receipts UNION SELECT site FROM receipt_keys ORDER BY 1',
      )
      .all() as Array<{ site: string }>
  ).map((r) => r.site);
}

/** Artifact ids each bundle carried. */
export function carriedBy(db: RelayDb, bundleId: string): number[] {
  return (
    db.prepare('SELECT artifact_id FROM bundle_artifacts WHERE bundle_id = ?').all(bundleId) as Array<{
      artifact_id: number;
    }>
  ).map((r) => r.artifact_id);
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
  const old = db
    .prepare('SELECT * FROM exports WHERE site = ? AND sequence >= ? ORDER BY sequence')
    .all(site, from) as ExportRow[];
  const keep = db.prepare(
    `INSERT INTO superseded_exports (sequence, bundle_id, statement_sha256, site, created, superseded_at, superseded_by)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const r of old) keep.run(r.sequence, r.bundle_id, r.statement_sha256, r.site, r.created, at, by);
  db.prepare('DELETE FROM exports WHERE site = ? AND sequence >= ?').run(site, from);
  return old;
}
