/**
 * Managing the catalog: `ecluse relay list` (every artifact and, per site, whether it was delivered, is on its way,
 * was refused by the site's policy or is not exported yet) and `ecluse relay remove NAME@VERSION` (refused while a
 * bundle not yet acknowledged still carries it, unless forced; recorded in the relay's events).
 */
import fs from 'node:fs';
import { forgetImage } from './images/catalog-images.js';
import { forgetPackage } from './packages.js';
import { EcluseError } from '../sneakernet/errors.js';
import { blobPath, type ArtifactRow, type RelayHome } from './catalog.js';
import { carriedBy, knownSites } from './chains.js';
import { recordEvent } from './events.js';
import { siteState, type SiteState } from './site-state.js';
import { parseSubjectName, subjectName } from '../sneakernet/subject.js';
import { artifactNamed, artifactsByName, artifactWithBytes, deleteArtifact } from './artifacts.js';

export type DeliveryState = 'delivered' | 'on its way' | 'refused' | 'not yet exported';

export interface CatalogEntry {
  name: string;
  version: string;
  /** Addition (4.9): `vm-image` or `oci-image` (an OCI image's size and sha256 are those of all its blobs). */
  type: string;
  size: number;
  sha256: string;
  vendor: string | null;
  addedAt: string;
  sites: Record<string, DeliveryState>;
}

function deliveryIndex(home: RelayHome, state: SiteState): (row: ArtifactRow) => DeliveryState {
  const byFate = new Map<number, Set<string>>();
  for (const b of state.bundles) {
    for (const id of carriedBy(home.db, b.bundleId)) {
      const fates = byFate.get(id) ?? new Set<string>();
      fates.add(b.fate);
      byFate.set(id, fates);
    }
  }
  const refused = new Set(state.refusedByPolicy.map((a) => a.sha256));
  return (row) => {
    if (refused.has(row.sha256)) return 'refused';
    if (state.ack?.inventory.has(row.sha256)) return 'delivered';
    const fates = byFate.get(row.id) ?? new Set<string>();
    if (fates.has('accepted')) return 'delivered';
    if (fates.has('on its way')) return 'on its way';
    return 'not yet exported';
  };
}

export function listCatalog(home: RelayHome, site?: string): { sites: string[]; artifacts: CatalogEntry[] } {
  const sites = site === undefined ? knownSites(home.db) : [site];
  const index = sites.map((s) => ({ site: s, of: deliveryIndex(home, siteState(home, s)) }));
  const rows = artifactsByName(home.db);
  return {
    sites,
    artifacts: rows.map((r) => ({
      name: r.name,
      version: r.version,
      type: r.type,
      size: r.size,
      sha256: r.sha256,
      vendor: r.vendor,
      addedAt: r.added_at,
      sites: Object.fromEntries(index.map((x) => [x.site, x.of(r)])),
    })),
  };
}

/** `NAME@VERSION` into its parts (one spelling for both stations: sneakernet/subject.ts). */
export const parseArtifactRef = parseSubjectName;

export interface Removed {
  name: string;
  version: string;
  sha256: string;
  size: number;
  /** Bundles not acknowledged yet that carry it (only when forced). */
  stillCarriedBy: Array<{ site: string; sequence: number }>;
  blobRemoved: boolean;
}

export function removeArtifact(home: RelayHome, ref: string, force: boolean): Removed {
  const { name, version } = parseArtifactRef(ref);
  const row = artifactNamed(home.db, name, version);
  if (!row) {
    throw new EcluseError(
      'E_NOT_FOUND',
      `${subjectName({ name, version })} is not in the catalog (ecluse relay list shows what is)`,
    );
  }
  const pending: Array<{ site: string; sequence: number }> = [];
  for (const s of knownSites(home.db)) {
    for (const b of siteState(home, s).bundles) {
      if (b.fate === 'on its way' && carriedBy(home.db, b.bundleId).includes(row.id)) {
        pending.push({ site: s, sequence: b.sequence });
      }
    }
  }
  const first = pending[0];
  if (first && !force) {
    throw new EcluseError(
      'E_UNACKNOWLEDGED',
      `${subjectName({ name, version })} travels in bundle #${first.sequence} for site ${first.site}, which the site has not acknowledged (resending it needs the artifact): bring its receipt back first (ecluse relay receipt import MEDIA), or remove it anyway (ecluse relay remove ${subjectName({ name, version })} --force)`,
      { check: 'receipt' },
    );
  }
  let blobRemoved = false;
  let imageBlobs: string[] = [];
  home.db.transaction(() => {
    deleteArtifact(home.db, row.id);
    // An OCI image's blobs are shared: only those no other image (nor a VM image) needs go.
    if (row.type === 'oci-image') imageBlobs = forgetImage(home.db, row.id);
    if (row.type === 'ecluse-package') forgetPackage(home.db, row.id);
    const shared = artifactWithBytes(home.db, row.sha256);
    if ((row.type === 'vm-image' || row.type === 'ecluse-package') && !shared) {
      home.db.prepare('DELETE FROM chunk_lists WHERE sha256 = ?').run(row.sha256);
      blobRemoved = true;
    }
    recordEvent(home.db, 'artifact.removed', {
      subject: subjectName({ name, version }),
      details: { sha256: row.sha256, size: row.size, forced: force, stillCarriedBy: pending },
    });
  })();
  if (blobRemoved) fs.rmSync(blobPath(home, row.sha256), { force: true });
  for (const d of imageBlobs) fs.rmSync(blobPath(home, d.slice('sha256:'.length)), { force: true });
  if (imageBlobs.length > 0) blobRemoved = true;
  return { name, version, sha256: row.sha256, size: row.size, stillCarriedBy: pending, blobRemoved };
}
