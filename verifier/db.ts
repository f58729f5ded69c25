/**
 * The import station's SQLite database (`<home>/ecluse.sqlite`): site settings, the image catalog, the monotonic
 * per-station state, the bundles seen, and the audit log. One file, WAL mode, every change in a transaction.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import { z } from 'zod';
import { EcluseError } from '../sneakernet/errors.js';
import { storedRows } from '../sneakernet/stored-rows.js';
import { databaseError, stationHomeError } from '../sneakernet/station-home.js';
import { AUDIT_LOG_SCHEMA } from './audit/schema.js';
import { GLANCE_SCHEMA } from './glance/tables.js';
import { METADEFS_SCHEMA } from './glance/metadefs-tables.js';
import { RETIRED_IMAGES_SCHEMA } from './retired-images.js';
import { importHome } from './home.js';
import { REGISTRY_SCHEMA } from './registry/tables.js';
import { REGISTRY_TARGETS_SCHEMA } from './targets/registry-tables.js';
import { UPDATE_RESULTS_SCHEMA } from './update-results-table.js';
import { SELF_UPDATE_SCHEMA } from './self-update/packages.js';

export type Db = Database.Database;

/** Where the operator's database errors are made (shared with the export station's catalog). */
export { databaseError };

const SCHEMA_VERSION = 1;

/**
 * Each module owns its tables: it exports its `CREATE TABLE IF NOT EXISTS ...` text and adds it to this list. Tables
 * are only ever added (or columns added by an idempotent migration), never changed in place.
 */
const MODULE_SCHEMAS: string[] = [
  GLANCE_SCHEMA, // tokens, image members, Glance targets (issue 5)
  AUDIT_LOG_SCHEMA, // Merkle leaves, checkpoints, exports, web accounts (issue 6)
  METADEFS_SCHEMA, // Glance metadata definitions (issue 16)
  REGISTRY_SCHEMA, // the container registry: blobs and images (issue 18)
  REGISTRY_TARGETS_SCHEMA, // the site's own registries imports push container images into (issue 18)
  RETIRED_IMAGES_SCHEMA, // images retired from the store (issue 14)
  UPDATE_RESULTS_SCHEMA, // the root installer's results already audited (issue 17, self-update)
  SELF_UPDATE_SCHEMA, // écluse packages handed over to the privileged installer (issue 17)
];

const CORE_SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

-- The Glance-compatible image catalog. Extra properties are a flat JSON object of strings; tags a JSON array.
CREATE TABLE IF NOT EXISTS images (
  id               TEXT PRIMARY KEY,
  name             TEXT,
  status           TEXT NOT NULL,
  visibility       TEXT NOT NULL DEFAULT 'shared',
  protected        INTEGER NOT NULL DEFAULT 0,
  os_hidden        INTEGER NOT NULL DEFAULT 0,
  checksum         TEXT,
  os_hash_algo     TEXT,
  os_hash_value    TEXT,
  size             INTEGER,
  virtual_size     INTEGER,
  container_format TEXT,
  disk_format      TEXT,
  min_disk         INTEGER NOT NULL DEFAULT 0,
  min_ram          INTEGER NOT NULL DEFAULT 0,
  owner            TEXT,
  created_at       TEXT NOT NULL,
  updated_at       TEXT NOT NULL,
  -- file name under <home>/store/images, NULL while the image has no data
  file             TEXT,
  -- 'bundle' for images that came through a verified bundle, 'api' for images created through the API
  origin           TEXT NOT NULL,
  bundle_id        TEXT,
  artifact_name    TEXT,
  artifact_version TEXT,
  sha256           TEXT,
  properties       TEXT NOT NULL DEFAULT '{}',
  tags             TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS images_created ON images (created_at, id);
CREATE INDEX IF NOT EXISTS images_name ON images (name);
CREATE INDEX IF NOT EXISTS images_artifact ON images (artifact_name, artifact_version);

-- Monotonic state: the last bundle accepted from each export station.
CREATE TABLE IF NOT EXISTS stations (
  station          TEXT PRIMARY KEY,
  sequence         INTEGER NOT NULL,
  bundle_id        TEXT NOT NULL,
  statement_sha256 TEXT NOT NULL,
  created          TEXT NOT NULL,
  accepted_at      TEXT NOT NULL
);

-- Every bundle accepted, by id (a replay of any of them is refused even across stations).
CREATE TABLE IF NOT EXISTS bundles (
  bundle_id        TEXT PRIMARY KEY,
  station          TEXT NOT NULL,
  sequence         INTEGER NOT NULL,
  statement_sha256 TEXT NOT NULL,
  created          TEXT NOT NULL,
  expires          TEXT NOT NULL,
  signers          TEXT NOT NULL,
  imported_at      TEXT NOT NULL
);

-- Every step and decision, append-only.
CREATE TABLE IF NOT EXISTS audit (
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  at         TEXT NOT NULL,
  kind       TEXT NOT NULL,
  outcome    TEXT NOT NULL,
  code       TEXT,
  message    TEXT NOT NULL,
  bundle_id  TEXT,
  station    TEXT,
  artifact   TEXT,
  media      TEXT,
  details    TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_bundle ON audit (bundle_id);
`;

export function dbPath(home: string): string {
  return importHome(home).database;
}

export function openDb(home: string, options: { readonly?: boolean } = {}): Db {
  const file = dbPath(home);
  try {
    fs.mkdirSync(home, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw stationHomeError(home, e);
  }
  let db: Db | undefined;
  try {
    db = new Database(file, {
      readonly: options.readonly ?? false,
      fileMustExist: options.readonly ?? false,
    });
    if (!options.readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.exec(CORE_SCHEMA);
      for (const schema of MODULE_SCHEMAS) db.exec(schema);
      db.prepare('INSERT OR IGNORE INTO settings (key, value) VALUES (?, ?)').run(
        'schema_version',
        String(SCHEMA_VERSION),
      );
    } else {
      db.pragma('schema_version'); // reads the header: a file that is not a database fails here, not later
    }
    db.pragma('busy_timeout = 5000');
    return db;
  } catch (e) {
    db?.close();
    throw databaseError(file, e);
  }
}

const quickCheck = storedRows(
  'PRAGMA quick_check',
  z.object({ quick_check: z.string() }),
  'restore the home from its last backup',
);

/**
 * SQLite's own check of every page of the database (`PRAGMA quick_check`): throws E_DATABASE naming the first
 * problem. A log whose pages are damaged is not "intact", whatever the rows that can still be read say.
 */
export function checkDatabaseIntegrity(db: Db): void {
  let problems: string[];
  try {
    problems = quickCheck
      .all(db, 'PRAGMA quick_check')
      .map((r) => r.quick_check)
      .filter((t) => t !== 'ok');
  } catch (e) {
    throw databaseError(db.name, e);
  }
  if (problems.length > 0)
    throw new EcluseError(
      'E_DATABASE',
      `${db.name} is damaged (${problems.length} problem(s), first: ${problems[0]}): restore the home from its last backup; the audit log cannot be vouched for`,
      { check: 'database-integrity', file: db.name },
    );
}

const settings = storedRows(
  'settings',
  z.object({ value: z.string() }),
  'set it again with "ecluse site set KEY VALUE", or restore the home from its last backup',
);

export function getSetting(db: Db, key: string): string | undefined {
  return settings.get(db, 'SELECT value FROM settings WHERE key = ?', key)?.value;
}

export function setSetting(db: Db, key: string, value: string): void {
  db.prepare(
    'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
  ).run(key, value);
}

/** A row of `images`: described and read in image-catalog.ts (kept here for the modules that import it from here). */
export type { ImageRow } from './image-catalog.js';

/** Glance's timestamp form: `YYYY-MM-DDTHH:MM:SSZ`. */
export function glanceTime(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
