/**
 * The record of a hand-over (docs/FORMAT.md 4.10), written in the commit that accepts the bundle: the
 * `handed_over_packages` row, state `pending` until placing.ts renames the package into the spool after the commit,
 * and the audit event `update.handed-over` (bundle, version, sha256, where).
 */
import { appendAudit } from '../audit.js';
import type { Db } from '../db.js';
import type { HandedOver } from './hand-over.js';
import { recordHandedOver } from './packages.js';

export function recordHandOver(
  db: Db,
  h: HandedOver,
  o: { bundleId: string; station: string; media: string; at: string },
): HandedOver {
  recordHandedOver(db, {
    sha256: h.sha256,
    version: h.version,
    arch: h.arch,
    size: h.size,
    bundle_id: o.bundleId,
    station: o.station,
    spool: h.deb,
    handed_at: o.at,
    state: 'pending',
  });
  appendAudit(db, {
    kind: 'update.handed-over',
    outcome: 'info',
    message: `ecluse ${h.version} (${h.arch}) handed over to the installer as ${h.deb}, with the bundle's signatures in ${h.evidence} (renamed into place once this is committed)`,
    bundleId: o.bundleId,
    station: o.station,
    artifact: `${h.name}@${h.version}`,
    media: o.media,
    details: { version: h.version, arch: h.arch, sha256: h.sha256, size: h.size, deb: h.deb, evidence: h.evidence },
  });
  return h;
}
