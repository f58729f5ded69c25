/**
 * Schema versions of the export station's catalog (`PRAGMA user_version`), each step a function that takes a home of
 * the version before it to the next one, in one transaction.
 *
 * - 0: the first layout. One sequence for the whole station (`exports.sequence` the primary key), whatever the site;
 *   what a bundle carried only as `artifacts.exported_in` (the last bundle that carried it).
 * - 1: chains per destination site. `exports` keyed by (site, sequence), `bundle_artifacts` says what every bundle
 *   carried, `relay_events` keeps what operators did. Bundles written before keep their numbers (they are signed): a
 *   site's chain may then skip the numbers that went to other sites (see docs/FORMAT.md section 11).
 * - 2: OCI images (docs/FORMAT.md 4.9). `images` (one row per `artifacts` row of type `oci-image`: where it came from,
 *   its repository, tag, digest, platforms and blob list) and `image_blobs` (which store blobs each image needs). Only
 *   tables are added; a catalog of version 1 is unchanged otherwise.
 */
import { z } from 'zod';
import { storedRows, tableColumns } from '../sneakernet/stored-rows.js';
import type { RelayDb } from './relay-db.js';

const ADVICE = 'restore the station home from its last backup before upgrading again';
const recordedStatement = storedRows(
  'exports',
  z.object({ bundle_id: z.string(), statement: z.union([z.instanceof(Buffer), z.string()]).nullable() }),
  ADVICE,
);
const artifactId = storedRows('artifacts', z.object({ id: z.number().int() }), ADVICE);

export const SCHEMA_VERSION = 2;

function tableExists(db: RelayDb, name: string): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
}

function columnsOf(db: RelayDb, table: string): Set<string> {
  return new Set(tableColumns(db, table).map((c) => c.name));
}

/** The artifacts a recorded statement names (by digest), or null when the bytes are not a readable statement. */
function statementDigests(statement: Buffer): string[] | null {
  try {
    const s = JSON.parse(statement.toString('utf8')) as { predicate?: { artifacts?: Array<{ sha256?: unknown }> } };
    const list = s.predicate?.artifacts;
    if (!Array.isArray(list)) return null;
    return list.map((a) => a.sha256).filter((d): d is string => typeof d === 'string');
  } catch {
    return null;
  }
}

/** 0 → 1: one chain per destination site. `schema` creates the tables of version 1 where they are missing. */
function perSiteChains(db: RelayDb, schema: string, now: string): void {
  const old = columnsOf(db, 'exports');
  db.exec('ALTER TABLE exports RENAME TO exports_v0');
  db.exec(schema);
  const kept = (c: string) => (old.has(c) ? c : 'NULL');
  db.exec(
    `INSERT INTO exports (site, sequence, bundle_id, statement_sha256, created, expires, media, volumes, bytes,
     statement, media_bytes)
     SELECT site, sequence, bundle_id, statement_sha256, created, expires, media, volumes, bytes,
     ${kept('statement')}, ${kept('media_bytes')} FROM exports_v0`,
  );
  const rows = recordedStatement.all(db, 'SELECT bundle_id, statement FROM exports');
  const carried = db.prepare('INSERT OR IGNORE INTO bundle_artifacts (bundle_id, artifact_id) VALUES (?, ?)');
  for (const r of rows) {
    const digests = r.statement ? statementDigests(Buffer.from(r.statement)) : null;
    if (digests) {
      for (const d of digests) {
        for (const a of artifactId.all(db, 'SELECT id FROM artifacts WHERE sha256 = ?', d))
          carried.run(r.bundle_id, a.id);
      }
    }
  }
  // Bundles written before statements were kept: what `exported_in` still says they carried.
  db.exec(
    `INSERT OR IGNORE INTO bundle_artifacts (bundle_id, artifact_id)
     SELECT exported_in, id FROM artifacts WHERE exported_in IN (SELECT bundle_id FROM exports WHERE statement IS NULL)`,
  );
  db.exec('DROP TABLE exports_v0');
  db.prepare(
    "INSERT INTO relay_events (at, kind, site, subject, details) VALUES (?, 'catalog.migrated', NULL, ?, ?)",
  ).run(
    now,
    'schema 1',
    JSON.stringify({ from: 0, to: 1, bundles: rows.length, change: 'one chain per destination site' }),
  );
}

/**
 * Brings a catalog to SCHEMA_VERSION. `schema` is the current layout (CREATE ... IF NOT EXISTS); `columns` adds the
 * columns added in place since the first release. A new catalog is created at the current version directly.
 */
export function migrateCatalog(db: RelayDb, schema: string, columns: () => void, now: string): void {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) return; // a newer écluse wrote it: it only ever adds, so read on
  db.transaction(() => {
    const shared = version < 1 && tableExists(db, 'exports') && sharedSequence(db);
    if (tableExists(db, 'artifacts')) columns();
    if (shared) perSiteChains(db, schema, now);
    db.exec(schema);
    columns();
    if (version >= 1 && version < 2) {
      db.prepare(
        "INSERT INTO relay_events (at, kind, site, subject, details) VALUES (?, 'catalog.migrated', NULL, ?, ?)",
      ).run(now, 'schema 2', JSON.stringify({ from: version, to: 2, change: 'OCI images (images, image_blobs)' }));
    }
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

/** True when `exports` has the first layout: `sequence` alone is its primary key. */
function sharedSequence(db: RelayDb): boolean {
  const pk = tableColumns(db, 'exports').filter((c) => c.primaryKey);
  return pk.length === 1 && pk[0]?.name === 'sequence';
}
