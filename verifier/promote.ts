/**
 * Promotion: staged artifacts become images in one step. Under one SQLite write transaction the checks run again, the
 * staged files are renamed into the store under fresh image ids and the folder is fsynced, then the images are
 * inserted, the station's sequence advanced, the bundle recorded and the decision audited. If the transaction fails,
 * the renamed files are removed; if the process dies before the commit, they are orphans no client can see
 * (`ecluse store check --repair`, which takes the same lock, removes them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { syncDirSync } from '../sneakernet/durable.js';
import type { Statement } from '../sneakernet/statement.js';
import { appendAudit } from './audit.js';
import { glanceTime } from './db.js';
import { checkFreshness, type CheckRecord } from './freshness.js';
import { imageSignatureProperties } from './image-signature.js';
import { pushToTargets } from './targets/push.js';
import { checkAdmission, type Placement } from './policy/admission.js';
import type { ActivePolicy } from './policy/store.js';
import type { Site } from './site.js';
import type { StagedArtifact } from './staging.js';
import { subjectName } from '../sneakernet/subject.js';
import { EcluseError } from '../sneakernet/errors.js';

export interface PromotedImage {
  id: string;
  name: string;
  version: string;
  size: number;
  checksum: string;
  os_hash_algo: 'sha512';
  os_hash_value: string;
  sha256: string;
  disk_format: string;
  container_format: string;
}

export interface Promotion {
  statement: Statement;
  statementSha256: string;
  signers: string[];
  staged: StagedArtifact[];
  checks: CheckRecord[];
  policy: ActivePolicy;
  placements: Placement[];
  media: string;
  now: Date;
}

export async function promote(site: Site, o: Promotion): Promise<PromotedImage[]> {
  const p = o.statement.predicate;
  const moved: string[] = [];
  const images: Array<PromotedImage & { file: string; staged: string; properties: Record<string, string> }> = [];
  try {
    for (const s of o.staged) {
      if (!s.file)
        throw new EcluseError(
          'E_INTERNAL',
          `${subjectName(s.artifact)} reached promotion without being staged (a bug: report it with this line)`,
        );
      const id = randomUUID();
      const a = s.artifact;
      images.push({
        id,
        name: a.name,
        version: a.version,
        size: a.size,
        checksum: s.digests.md5,
        os_hash_algo: 'sha512',
        os_hash_value: s.digests.sha512,
        sha256: s.digests.sha256,
        disk_format: a.diskFormat,
        container_format: a.containerFormat,
        file: id,
        staged: s.file,
        properties: {
          ...a.properties,
          ecluse_version: a.version,
          ecluse_bundle_id: p.bundleId,
          ecluse_station: p.station,
          ecluse_sequence: String(p.sequence),
          ecluse_signers: o.signers.join(','),
          ecluse_sha256: a.sha256,
          ...(a.provenance.vendor ? { ecluse_vendor: a.provenance.vendor } : {}),
        },
      });
    }
    // Glance image signatures (img_signature*), by this station's key, from the sha256 of the staged bytes.
    for (const i of images) {
      const sha256 = o.staged.find((s) => s.file === i.staged)?.digests.sha256;
      Object.assign(i.properties, await imageSignatureProperties(site, i.staged, sha256));
    }
    const at = glanceTime(o.now);
    const db = site.db;
    db.transaction(() => {
      // The state may have moved since the checks ran (another import): check again under the write lock.
      checkFreshness(db, site.siteId, o.statement, o.now);
      checkAdmission(db, o.policy, o.statement, o.signers, site.threshold);
      // Files enter the store under the same write lock as their catalog rows, so `store check --repair` (which
      // takes it too) never sees a promoted file that the catalog does not name yet.
      for (const i of images) {
        const target = path.join(site.home.images, i.file);
        fs.renameSync(i.staged, target);
        moved.push(target);
      }
      syncDirSync(site.home.images);
      const hideOlder = db.prepare(
        "UPDATE images SET os_hidden = 1, updated_at = ? WHERE origin = 'bundle' AND artifact_name = ? AND os_hidden = 0",
      );
      const insert = db.prepare(
        `INSERT INTO images (id, name, status, visibility, protected, os_hidden, checksum, os_hash_algo, os_hash_value,
           size, virtual_size, container_format, disk_format, min_disk, min_ram, owner, created_at, updated_at, file,
           origin, bundle_id, artifact_name, artifact_version, sha256, properties, tags)
         VALUES (?, ?, 'active', ?, 0, 0, ?, 'sha512', ?, ?, NULL, ?, ?, 0, 0, NULL, ?, ?, ?, 'bundle', ?, ?, ?, ?, ?, '[]')`,
      );
      for (const i of images) {
        hideOlder.run(at, i.name);
        const visibility = o.placements.find((pl) => pl.artifact === subjectName(i))?.visibility ?? 'public';
        insert.run(
          i.id,
          i.name,
          visibility,
          i.checksum,
          i.os_hash_value,
          i.size,
          i.container_format,
          i.disk_format,
          at,
          at,
          i.file,
          p.bundleId,
          i.name,
          i.version,
          i.sha256,
          JSON.stringify(i.properties),
        );
      }
      db.prepare(
        `INSERT INTO stations (station, sequence, bundle_id, statement_sha256, created, accepted_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(station) DO UPDATE SET sequence = excluded.sequence, bundle_id = excluded.bundle_id,
           statement_sha256 = excluded.statement_sha256, created = excluded.created, accepted_at = excluded.accepted_at`,
      ).run(p.station, p.sequence, p.bundleId, o.statementSha256, p.created, at);
      db.prepare(
        `INSERT INTO bundles (bundle_id, station, sequence, statement_sha256, created, expires, signers, imported_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      ).run(p.bundleId, p.station, p.sequence, o.statementSha256, p.created, p.expires, JSON.stringify(o.signers), at);
      for (const c of o.checks) {
        appendAudit(db, {
          kind: `check.${c.check}`,
          outcome: 'pass',
          message: c.detail,
          bundleId: p.bundleId,
          station: p.station,
          media: o.media,
        });
      }
      for (const i of images) {
        appendAudit(db, {
          kind: 'image.promoted',
          outcome: 'info',
          message: `${i.name} ${i.version} is image ${i.id}`,
          bundleId: p.bundleId,
          station: p.station,
          artifact: subjectName(i),
          details: { imageId: i.id, size: i.size, sha256: i.sha256 },
        });
      }
      appendAudit(db, {
        kind: 'import.accepted',
        outcome: 'accepted',
        message: `bundle ${p.station} #${p.sequence} accepted: ${images.length} image(s), signed by ${o.signers.join(', ')}`,
        bundleId: p.bundleId,
        station: p.station,
        media: o.media,
        details: {
          sequence: p.sequence,
          statementSha256: o.statementSha256,
          policyDigest: o.policy.digest,
          images: images.map((i) => i.id),
        },
      });
    }).immediate();
  } catch (e) {
    for (const f of moved) await fs.promises.rm(f, { force: true });
    throw e;
  }
  // Staging into the site's own Glance, if targets are set (issue 5): after the commit; never fails the import.
  const promotedIds = images.map((i) => i.id);
  await pushToTargets(site.db, site.home.images, promotedIds);
  return images.map(({ file: _f, staged: _s, properties: _p, ...rest }) => rest);
}
