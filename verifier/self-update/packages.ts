/**
 * écluse packages this import station accepted and handed over to the privileged installer (docs/FORMAT.md 4.10):
 * one row each, written in the commit that accepts the bundle. All of the table's SQL. The newest is what a package
 * must be newer than when dpkg has no ecluse installed (a development machine, the tests).
 *
 * `state` (added by migrateHandOvers; rows older than it were placed in their commit, hence the default): `pending`
 * from the commit until the package is renamed into the spool (verifier/self-update/placing.ts), then `placed`;
 * `lost` when its dot-files were gone before it could be placed: not delivered, so neither the receipt nor the
 * rollback check counts it, and the export station sends it again.
 */
import { z } from 'zod';
import { storedRows, tableColumns, type ReadConnection } from '../../sneakernet/stored-rows.js';
import type Database from 'better-sqlite3';
import { debianNewer } from './dpkg.js';

export const SELF_UPDATE_SCHEMA = `
CREATE TABLE IF NOT EXISTS handed_over_packages (
  sha256      TEXT PRIMARY KEY,
  version     TEXT NOT NULL,
  arch        TEXT NOT NULL,
  size        INTEGER NOT NULL,
  bundle_id   TEXT NOT NULL,
  station     TEXT NOT NULL,
  spool       TEXT NOT NULL,
  handed_at   TEXT NOT NULL
);`;

const row = z.object({
  sha256: z.string(),
  version: z.string(),
  arch: z.string(),
  size: z.number().int().nonnegative(),
  bundle_id: z.string(),
  station: z.string(),
  spool: z.string(),
  handed_at: z.string(),
  state: z.enum(['pending', 'placed', 'lost']),
});
export type HandedOverRow = z.output<typeof row>;
const rows = storedRows(
  'handed_over_packages',
  row,
  'restore the station home from its last backup (the record of packages handed over is part of the audit trail)',
);

export type HandOverState = HandedOverRow['state'];

/** Adds `state` to `handed_over_packages` (idempotent: columns are only ever added). */
export function migrateHandOvers(db: Database.Database): void {
  const columns = new Set(tableColumns(db, 'handed_over_packages').map((c) => c.name));
  if (!columns.has('state'))
    db.exec(`ALTER TABLE handed_over_packages ADD COLUMN state TEXT NOT NULL DEFAULT 'placed'`);
}

export function recordHandedOver(db: Database.Database, r: HandedOverRow): void {
  db.prepare(
    `INSERT OR REPLACE INTO handed_over_packages
       (sha256, version, arch, size, bundle_id, station, spool, handed_at, state)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(r.sha256, r.version, r.arch, r.size, r.bundle_id, r.station, r.spool, r.handed_at, r.state);
}

export function setHandOverState(db: Database.Database, sha256: string, state: HandOverState): void {
  db.prepare('UPDATE handed_over_packages SET state = ? WHERE sha256 = ?').run(state, sha256);
}

/** The packages delivered or to be delivered (pending or placed; not the lost ones). */
export function handedOverPackages(db: ReadConnection): HandedOverRow[] {
  return rows.all(db, `SELECT * FROM handed_over_packages WHERE state != 'lost' ORDER BY handed_at, sha256`);
}

/** The hand-overs recorded but not placed yet (the placing after their commit failed, or the process died). */
export function pendingHandOvers(db: ReadConnection): HandedOverRow[] {
  return rows.all(db, `SELECT * FROM handed_over_packages WHERE state = 'pending' ORDER BY handed_at, sha256`);
}

export function handOverRow(db: ReadConnection, sha256: string): HandedOverRow | undefined {
  return rows.get(db, 'SELECT * FROM handed_over_packages WHERE sha256 = ?', sha256);
}

/** The newest version (dpkg's order) of the packages handed over, or null when none was. */
export function newestHandedOver(db: ReadConnection): string | null {
  let best: string | null = null;
  for (const r of handedOverPackages(db)) if (best === null || debianNewer(r.version, best)) best = r.version;
  return best;
}
