/**
 * The export station's catalog (`<home>/relay.sqlite`) and content-addressed blob store (`<home>/blobs/sha256/<hex>`):
 * what was added, and which bundle carried it. The station id names this export station in every statement.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';

export type RelayDb = Database.Database;

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
  exported_in      TEXT,
  UNIQUE (name, version)
);
CREATE TABLE IF NOT EXISTS exports (
  sequence         INTEGER PRIMARY KEY,
  bundle_id        TEXT NOT NULL UNIQUE,
  statement_sha256 TEXT NOT NULL,
  site             TEXT NOT NULL,
  created          TEXT NOT NULL,
  expires          TEXT NOT NULL,
  media            TEXT NOT NULL,
  volumes          INTEGER NOT NULL,
  bytes            INTEGER NOT NULL
);
`;

export interface ArtifactRow {
  id: number;
  name: string;
  version: string;
  type: string;
  size: number;
  sha256: string;
  sha512: string;
  disk_format: string;
  container_format: string;
  properties: string;
  vendor: string | null;
  source: string;
  added_at: string;
  exported_in: string | null;
}

export interface ExportRow {
  sequence: number;
  bundle_id: string;
  statement_sha256: string;
  site: string;
  created: string;
  expires: string;
  media: string;
  volumes: number;
  bytes: number;
}

export interface RelayHome {
  root: string;
  db: RelayDb;
  blobs: string;
  station: string;
}

export function blobPath(home: Pick<RelayHome, 'blobs'>, sha256: string): string {
  return path.join(home.blobs, 'sha256', sha256);
}

/** Opens (creating on first use) the export station's home. */
export function openRelayHome(root: string): RelayHome {
  fs.mkdirSync(path.join(root, 'blobs', 'sha256'), { recursive: true, mode: 0o700 });
  const db = new Database(path.join(root, 'relay.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(SCHEMA);
  let station = (db.prepare("SELECT value FROM settings WHERE key = 'station'").get() as { value: string } | undefined)
    ?.value;
  if (!station) {
    station = `relay-${randomBytes(4).toString('hex')}`;
    db.prepare("INSERT INTO settings (key, value) VALUES ('station', ?)").run(station);
  }
  return { root, db, blobs: path.join(root, 'blobs'), station };
}

export function lastExport(db: RelayDb): ExportRow | undefined {
  return db.prepare('SELECT * FROM exports ORDER BY sequence DESC LIMIT 1').get() as ExportRow | undefined;
}
