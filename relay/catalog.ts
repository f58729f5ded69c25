/**
 * The export station's catalog (`<home>/relay.sqlite`) and content-addressed blob store (`<home>/blobs/sha256/<hex>`):
 * what was added, and which bundle carried it. The station id names this export station in every statement.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { isoSeconds } from '../sneakernet/statement.js';
import { z } from 'zod';
import { storedRows, tableColumns } from '../sneakernet/stored-rows.js';
import { artifactsWithoutMd5, setMd5 } from './artifacts.js';
import { databaseError, stationHomeError } from '../sneakernet/station-home.js';
import { migrateCatalog } from './migrations.js';
import { PACKAGES_TABLE } from './packages.js';
import { CHECKED_CHUNK_LISTS_TABLE } from './checked-chunk-lists.js';

import type { RelayDb } from './relay-db.js';

export type { RelayDb };

const SCHEMA = `
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  name             TEXT NOT NULL,
  version          TEXT NOT NULL,
  type             TEXT NOT NULL,
  size             INTEGER NOT NULL,
  sha256           TEXT NOT NULL,
  sha512           TEXT NOT NULL,
  disk_format      TEXT NOT NULL,
  container_format TEXT NOT NULL,
  properties       TEXT NOT NULL,
  vendor           TEXT,
  source           TEXT NOT NULL,
  added_at         TEXT NOT NULL,
  -- Unused since schema 1 (bundle_artifacts says what each bundle carried); kept so old homes stay readable.
  exported_in      TEXT,
  UNIQUE (name, version)
);
-- Every bundle written, per destination site: each site has its own chain (sequence 1, 2, 3 ... and \`previous\`).
CREATE TABLE IF NOT EXISTS exports (
  site             TEXT NOT NULL,
  sequence         INTEGER NOT NULL,
  bundle_id        TEXT NOT NULL UNIQUE,
  statement_sha256 TEXT NOT NULL,
  created          TEXT NOT NULL,
  expires          TEXT NOT NULL,
  media            TEXT NOT NULL,
  volumes          INTEGER NOT NULL,
  bytes            INTEGER NOT NULL,
  statement        BLOB,
  media_bytes      INTEGER,
  PRIMARY KEY (site, sequence)
);
-- Which artifacts each bundle carried (what a site has been sent is the union over its bundles).
CREATE TABLE IF NOT EXISTS bundle_artifacts (
  bundle_id   TEXT NOT NULL,
  artifact_id INTEGER NOT NULL,
  PRIMARY KEY (bundle_id, artifact_id)
);
-- The export station's own record of what operators did (exports, replacements, removals, receipts taken).
CREATE TABLE IF NOT EXISTS relay_events (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  at      TEXT NOT NULL,
  kind    TEXT NOT NULL,
  site    TEXT,
  subject TEXT,
  details TEXT NOT NULL
);
-- Bundles replaced by \`export --replace N\` (lost, expired or refused inside): kept for the record.
CREATE TABLE IF NOT EXISTS superseded_exports (
  sequence         INTEGER NOT NULL,
  bundle_id        TEXT PRIMARY KEY,
  statement_sha256 TEXT NOT NULL,
  site             TEXT NOT NULL,
  created          TEXT NOT NULL,
  superseded_at    TEXT NOT NULL,
  superseded_by    TEXT NOT NULL
);
-- Content-defined chunks of a blob (relay/delta.ts), kept so that a release is cut once, not at every export:
-- \`chunks\` packs, per chunk, its size (uint32 BE) and SHA-256 (32 bytes); offsets follow from the sizes.
CREATE TABLE IF NOT EXISTS chunk_lists (
  sha256  TEXT NOT NULL,
  avg     INTEGER NOT NULL,
  chunks  BLOB NOT NULL,
  PRIMARY KEY (sha256, avg)
);
-- Vendor feeds (relay/feeds/): the declared config and the trust material pinned when it was declared.
CREATE TABLE IF NOT EXISTS feeds (
  name       TEXT PRIMARY KEY,
  config     TEXT NOT NULL,
  trust      TEXT NOT NULL,
  added_at   TEXT NOT NULL
);
-- Import receipts (relay/receipts/): the pinned receipt key of each site, and every receipt taken.
CREATE TABLE IF NOT EXISTS receipt_keys (
  site       TEXT PRIMARY KEY,
  key_id     TEXT NOT NULL,
  public_pem TEXT NOT NULL,
  pinned_at  TEXT NOT NULL
);
-- OCI images (FORMAT.md 4.9, schema 2): one row per catalog artifact of type oci-image (artifacts.id), and which
-- content-addressed blobs of the store each needs (a blob is stored once, whatever number of images need it).
CREATE TABLE IF NOT EXISTS images (
  artifact_id INTEGER PRIMARY KEY,
  reference   TEXT NOT NULL,
  repository  TEXT NOT NULL,
  tag         TEXT NOT NULL,
  digest      TEXT NOT NULL,
  media_type  TEXT NOT NULL,
  platforms   TEXT NOT NULL,
  blobs       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS image_blobs (
  digest      TEXT NOT NULL,
  artifact_id INTEGER NOT NULL,
  PRIMARY KEY (digest, artifact_id)
);
CREATE INDEX IF NOT EXISTS image_blobs_by_artifact ON image_blobs (artifact_id);
-- écluse's own packages (FORMAT.md 4.10): one row per catalog artifact of type ecluse-package (artifacts.id).
${PACKAGES_TABLE}
${CHECKED_CHUNK_LISTS_TABLE}
CREATE TABLE IF NOT EXISTS receipts (
  site         TEXT NOT NULL,
  number       INTEGER NOT NULL,
  issued       TEXT NOT NULL,
  acknowledged INTEGER NOT NULL,
  payload      TEXT NOT NULL,
  taken_at     TEXT NOT NULL,
  PRIMARY KEY (site, number)
);
`;

/** Columns added after the first release: added in place when missing (never changed). */
const COLUMNS: Array<{ table: string; column: string; decl: string }> = [
  // The vendor evidence (JSON, format 4.5) kept for an artifact fetched from a feed; NULL for `relay add`.
  { table: 'artifacts', column: 'evidence', decl: 'TEXT' },
  { table: 'artifacts', column: 'feed', decl: 'TEXT' },
  // Glance's `checksum` (md5), computed with sha256 and sha512 and carried signed (format 4.8); NULL only for rows
  // older than the column whose blob is gone (their bundles then carry no md5 and the import station computes it).
  { table: 'artifacts', column: 'md5', decl: 'TEXT' },
];

function addColumns(db: RelayDb): void {
  for (const c of COLUMNS) {
    const cols = tableColumns(db, c.table);
    if (!cols.some((x) => x.name === c.column)) db.exec(`ALTER TABLE ${c.table} ADD COLUMN ${c.column} ${c.decl}`);
  }
}

/**
 * Rows from before the md5 column get their md5 from their blob, once (the blob is in the store until it is pruned):
 * read and hashed here, so every later export carries it. A row whose blob is gone keeps NULL.
 */
function backfillMd5(db: RelayDb, blobs: string): void {
  const rows = artifactsWithoutMd5(db);
  for (const r of rows) {
    const md5 = md5OfFile(blobPath({ blobs }, r.sha256));
    if (md5 !== null) setMd5(db, r.id, md5);
  }
}

function md5OfFile(file: string): string | null {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  try {
    const hash = createHash('md5');
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
    return hash.digest('hex');
  } finally {
    fs.closeSync(fd);
  }
}

/** A row of `artifacts`: described and read in artifacts.ts. */
export type { ArtifactRow } from './artifacts.js';

/** A row of `exports`: described and read in chains.ts. */
export type { ExportRow } from './chains.js';

export interface RelayHome {
  root: string;
  db: RelayDb;
  blobs: string;
  station: string;
}

export function blobPath(home: Pick<RelayHome, 'blobs'>, sha256: string): string {
  return path.join(home.blobs, 'sha256', sha256);
}

const stationSetting = storedRows(
  'settings',
  z.object({ value: z.string() }),
  'restore the station home from its last backup (the station id names every bundle it wrote)',
);

/** Opens (creating on first use) the export station's home. */
export function openRelayHome(root: string): RelayHome {
  try {
    fs.mkdirSync(path.join(root, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
    fs.accessSync(root, fs.constants.R_OK | fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    throw stationHomeError(root, e);
  }
  const file = path.join(root, 'relay.sqlite');
  let db: RelayDb | undefined;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
  } catch (e) {
    db?.close();
    throw databaseError(file, e);
  }
  migrateCatalog(db, SCHEMA, () => addColumns(db), isoSeconds());
  backfillMd5(db, path.join(root, 'blobs'));
  let station = stationSetting.get(db, "SELECT value FROM settings WHERE key = 'station'")?.value;
  if (!station) {
    station = `relay-${randomBytes(4).toString('hex')}`;
    db.prepare("INSERT INTO settings (key, value) VALUES ('station', ?)").run(station);
  }
  return { root, db, blobs: path.join(root, 'blobs'), station };
}
