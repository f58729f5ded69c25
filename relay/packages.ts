/**
 * écluse's own packages in the export station's catalog (docs/FORMAT.md 4.10): an `artifacts` row of type
 * `ecluse-package` (name `ecluse`, the Debian version, size and digests, provenance) with its `packages` row (the
 * architecture and the Node range the control file gives). All of the table's SQL.
 */
import { z } from 'zod';
import { EcluseError } from '../sneakernet/errors.js';
import { PACKAGE_ARCHES, type PackageFields } from '../sneakernet/ecluse-package.js';
import { storedRows, type ReadConnection } from '../sneakernet/stored-rows.js';
import type { RelayDb } from './relay-db.js';

const ADVICE = 'remove that package (ecluse relay remove ecluse@VERSION) and add it again, or restore the station home';

export const PACKAGES_TABLE = `
CREATE TABLE IF NOT EXISTS packages (
  artifact_id INTEGER PRIMARY KEY,
  arch        TEXT NOT NULL,
  node        TEXT NOT NULL
);`;

const packageRow = z.object({
  artifact_id: z.number().int().positive(),
  arch: z.enum(PACKAGE_ARCHES),
  node: z.string(),
});
const packages = storedRows('packages', packageRow, ADVICE);

export function insertPackage(db: RelayDb, artifactId: number, p: PackageFields): void {
  db.prepare('INSERT INTO packages (artifact_id, arch, node) VALUES (?, ?, ?)').run(artifactId, p.arch, p.node);
}

/** The `package` member of an ecluse-package artifact of the catalog. */
export function packageOf(db: ReadConnection, artifactId: number): PackageFields {
  const r = packages.get(db, 'SELECT * FROM packages WHERE artifact_id = ?', artifactId);
  if (!r) {
    throw new EcluseError('E_STORE', `the catalog has no package record for artifact ${artifactId}: ${ADVICE}`, {
      check: 'catalog-row',
    });
  }
  return { arch: r.arch, node: r.node };
}

export function forgetPackage(db: RelayDb, artifactId: number): void {
  db.prepare('DELETE FROM packages WHERE artifact_id = ?').run(artifactId);
}
