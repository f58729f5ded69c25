/**
 * What the site's policy adds for écluse's own package (docs/FORMAT.md 4.10), besides listing the type: the package
 * is for this station's architecture, and newer, as dpkg orders versions, than the ecluse installed here (or, with no
 * ecluse installed by dpkg, than every package this station already handed over). Never a downgrade, whatever the
 * rule says: the installer would refuse it too.
 */
import { stationArch } from '../../sneakernet/ecluse-package.js';
import type { EcluseArtifact } from '../../sneakernet/statement.js';
import type { Db } from '../db.js';
import { debianNewer, installedEcluseVersion } from './dpkg.js';
import { newestHandedOver } from './packages.js';

/** Why the package cannot run here (policy refusal), or null. */
export function packageArchProblem(a: EcluseArtifact, arch = stationArch()): string | null {
  if (a.package.arch === arch) return null;
  return `it is built for ${a.package.arch} and this station runs on ${arch ?? process.arch}`;
}

/** Why the package is not newer than what this station runs or handed over (rollback), or null. */
export function packageRollbackProblem(db: Db, a: EcluseArtifact): string | null {
  const installed = installedEcluseVersion();
  if (installed !== null) {
    return debianNewer(a.version, installed)
      ? null
      : `ecluse ${a.version} is not newer than ${installed}, installed here`;
  }
  const handed = newestHandedOver(db);
  if (handed === null || debianNewer(a.version, handed)) return null;
  return `ecluse ${a.version} is not newer than ${handed}, already handed over to the installer here`;
}
