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
import { EcluseError } from '../sneakernet/errors.js';
import { subjectName, type EcluseArtifact } from '../sneakernet/statement.js';
import { deltaBasesOf, gaps, MAX_GAPS_LISTED, recordAccepted } from './accepted-state.js';
import { appendAudit } from './audit.js';
import { glanceTime } from './db.js';
import { checkFreshness, type ChainPosition } from './freshness.js';
import { imageSignatureProperties } from './image-signature.js';
import { virtualSizeOf } from './disk-header.js';
import type { StagedBundle, VerifiedBundle } from './import-steps.js';
import { checkAdmission } from './policy/admission.js';
import type { Site } from './site.js';
import { insertBundleImage } from './image-catalog.js';
import { unpromoteBlobs } from './registry/blob-store.js';
import {
  abandonHandOver,
  DEFAULT_UPDATE_SPOOL,
  handedOverOf,
  prepareHandOver,
  type HandedOver,
  type PreparedHandOver,
} from './self-update/hand-over.js';
import { placeHandedOver } from './self-update/placing.js';
import { recordHandOver } from './self-update/record.js';
import {
  describePromotion,
  promoteContainerImages,
  type ImageToPromote,
  type PromotedContainerImage,
} from './registry/promote-images.js';

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

/** An artifact the store already held (same name, version and digest): not promoted twice. */
export interface AlreadyHere {
  name: string;
  version: string;
  sha256: string;
}

export interface Promoted {
  images: PromotedImage[];
  /** écluse's own package handed over to the privileged installer (docs/FORMAT.md 4.10), or null. */
  handedOver: HandedOver | null;
  /**
   * Why the package recorded in `handedOver` could not be placed in the spool after the commit (audited
   * `update.hand-over-failed` or `update.hand-over-lost`; the bundle stays accepted, a failed placing is tried again
   * at the daemon's next start and at the next import), or null.
   */
  handOverError: { code: string; message: string } | null;
  /** Container images now served by the registry (docs/FORMAT.md 4.9). */
  containerImages: PromotedContainerImage[];
  alreadyHere: AlreadyHere[];
}

/**
 * Step 9: the staged artifacts become images and the bundle joins the accepted state, in one transaction that
 * checks the state again under the write lock. Only commits: pushes to the site's own Glance are the caller's.
 */
export async function promote(
  site: Site,
  verified: VerifiedBundle,
  staged: StagedBundle,
  o: { media: string; now: Date; updateSpool?: string },
): Promise<Promoted> {
  const p = verified.statement.predicate;
  const checks = [...verified.checks, ...staged.checks];
  const moved: string[] = [];
  let createdBlobs: string[] = [];
  const containerImages: ImageToPromote[] = [];
  const here = new Set(verified.placements.filter((pl) => pl.alreadyHere).map((pl) => pl.artifact));
  const alreadyHere: AlreadyHere[] = [];
  let pkg: { artifact: EcluseArtifact; staged: string } | null = null;
  let handOver: PreparedHandOver | null = null;
  let handedOver: HandedOver | null = null;
  const images: Array<
    PromotedImage & { file: string; staged: string; properties: Record<string, string>; virtual_size: number | null }
  > = [];
  try {
    for (const s of staged.artifacts) {
      const a = s.artifact;
      if (here.has(subjectName(a))) {
        alreadyHere.push({ name: a.name, version: a.version, sha256: s.digests.sha256 });
        continue;
      }
      if (a.type === 'oci-image') {
        if (!s.image) throw new EcluseError('E_INTERNAL', `${subjectName(a)} was verified but its blobs not staged`);
        containerImages.push({ artifact: a, staged: s.image });
        continue;
      }
      if (a.type === 'ecluse-package') {
        if (!s.file) throw new EcluseError('E_INTERNAL', `${subjectName(a)} was verified but not staged`);
        pkg = { artifact: a, staged: s.file };
        continue;
      }
      if (!s.file || s.digests.md5 === null)
        throw new EcluseError('E_INTERNAL', `${subjectName(a)} was verified but not staged`);
      // The policy admits only VM images into the image store (an oci-image is refused at the policy step).
      if (a.type !== 'vm-image') throw new EcluseError('E_INTERNAL', `${subjectName(a)} is not a VM image`);
      const id = randomUUID();
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
        virtual_size: null,
        properties: {
          ...a.properties,
          ecluse_version: a.version,
          ecluse_bundle_id: p.bundleId,
          ecluse_station: p.station,
          ecluse_sequence: String(p.sequence),
          ecluse_signers: verified.signers.join(','),
          ecluse_sha256: a.sha256,
          ...(a.provenance.vendor ? { ecluse_vendor: a.provenance.vendor } : {}),
        },
      });
    }
    // Glance image signatures (img_signature*), by this station's key, from the sha256 of the staged bytes.
    for (const i of images) {
      const sha256 = staged.artifacts.find((s) => s.file === i.staged)?.digests.sha256;
      Object.assign(i.properties, await imageSignatureProperties(site, i.staged, sha256));
      // The virtual size from a qcow2 header (raw: its size), as Glance's own import reads it.
      i.virtual_size = await virtualSizeOf(i.staged, i.disk_format, i.size);
    }
    // écluse's own package: written to the spool under dot-names now, recorded (pending) in the commit below, renamed
    // into place only once that commit is done: the installer never sees a package the site did not accept.
    if (pkg)
      handOver = await prepareHandOver(o.updateSpool ?? DEFAULT_UPDATE_SPOOL, verified.files, pkg.artifact, pkg.staged);
    const at = glanceTime(o.now);
    const db = site.db;
    db.transaction(() => {
      // The state may have moved since the checks ran (another import): check again under the write lock.
      const again = checkFreshness(
        db,
        site.siteId,
        verified.statement,
        verified.statementSha256,
        o.now,
        verified.policy.policy.order,
      );
      checkAdmission(db, verified.policy, verified.statement, verified.signers, site.threshold);
      // Files enter the store under the same write lock as their catalog rows, so `store check --repair` (which
      // takes it too) never sees a promoted file that the catalog does not name yet.
      for (const i of images) {
        const target = path.join(site.home.images, i.file);
        fs.renameSync(i.staged, target);
        moved.push(target);
      }
      syncDirSync(site.home.images);
      // Container images: blobs into the registry store and their rows, under the same lock and transaction.
      if (containerImages.length > 0) {
        createdBlobs = promoteContainerImages(db, site.home.registryBlobs, containerImages, {
          bundleId: p.bundleId,
          station: p.station,
          at,
        });
      }
      for (const i of images) {
        const visibility = verified.placements.find((pl) => pl.artifact === subjectName(i))?.visibility ?? 'public';
        insertBundleImage(db, { ...i, visibility, bundleId: p.bundleId, at });
      }
      recordAccepted(db, {
        bundleId: p.bundleId,
        station: p.station,
        sequence: p.sequence,
        statementSha256: verified.statementSha256,
        previous: p.previous ? { bundleId: p.previous.bundleId, statementSha256: p.previous.statementSha256 } : null,
        created: p.created,
        expires: p.expires,
        signers: verified.signers,
        at,
      });
      for (const c of checks) {
        appendAudit(db, {
          kind: `check.${c.check}`,
          outcome: 'pass',
          message: c.detail,
          bundleId: p.bundleId,
          station: p.station,
          media: o.media,
        });
      }
      auditPosition(db, verified, again.position, o.media);
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
      // The package's hand-over, recorded pending: its files are renamed into place after the commit.
      if (handOver)
        handedOver = recordHandOver(db, handedOverOf(handOver), {
          bundleId: p.bundleId,
          station: p.station,
          media: o.media,
          at,
        });
      appendAudit(db, {
        kind: 'import.accepted',
        outcome: 'accepted',
        message: `bundle ${p.station} #${p.sequence} accepted${again.position.kind === 'late' ? ' late (named by its accepted successor)' : ''}: ${images.length} image(s)${containerImages.length ? `, ${containerImages.length} container image(s)` : ''}${handOver ? `, ecluse ${handOver.version} for the installer` : ''}${alreadyHere.length ? `, ${alreadyHere.length} already here` : ''}, signed by ${verified.signers.join(', ')}`,
        bundleId: p.bundleId,
        station: p.station,
        media: o.media,
        details: {
          sequence: p.sequence,
          statementSha256: verified.statementSha256,
          policyDigest: verified.policy.digest,
          images: images.map((i) => i.id),
          ...(containerImages.length ? { containerImages: containerImages.map((c) => subjectName(c.artifact)) } : {}),
          ...(handOver ? { package: { version: handOver.version, sha256: handOver.sha256 } } : {}),
          position: again.position.kind,
          alreadyHere: alreadyHere.map((a) => subjectName(a)),
          // The bases its deltas were made against: not retired while the station may send more like it.
          deltaBases: deltaBasesOf(p.artifacts),
        },
      });
    }).immediate();
  } catch (e) {
    if (handOver) await abandonHandOver(handOver);
    for (const f of moved) await fs.promises.rm(f, { force: true });
    await unpromoteBlobs(createdBlobs);
    throw e;
  }
  // Committed: now the evidence, then the package the path unit waits for. A failure is audited and retried later;
  // the bundle stays accepted.
  let handOverError: Promoted['handOverError'] = null;
  if (handOver) {
    const placed = placeHandedOver(site.db, handOver.sha256, { retry: false, media: o.media });
    if (placed && placed.outcome !== 'placed')
      handOverError = { code: placed.code ?? 'E_UPDATE', message: placed.message };
  }
  return {
    images: images.map(({ file: _f, staged: _s, properties: _p, virtual_size: _v, ...rest }) => rest),
    containerImages: containerImages.map(describePromotion),
    alreadyHere,
    handedOver,
    handOverError,
  };
}

/** The gap a bundle above it names, or the gap a late bundle fills: one audit event each. */
function auditPosition(db: Site['db'], v: VerifiedBundle, position: ChainPosition, media: string): void {
  const p = v.statement.predicate;
  if (position.kind === 'ahead') {
    const refused = new Map(
      gaps(db)
        .filter((g) => g.station === p.station)
        .map((g) => [g.sequence, g.refusedWith]),
    );
    const skipped = position.skipped.slice(0, MAX_GAPS_LISTED);
    const named = skipped.map(
      (n) => `#${n}${refused.get(n) ? ` (refused here: ${refused.get(n)})` : ' (not seen here)'}`,
    );
    appendAudit(db, {
      kind: 'bundle.gap',
      outcome: 'info',
      message: `bundle ${p.station} #${p.sequence} accepted above a gap: ${named.join(', ')} not imported; a late one is accepted if #${p.sequence} names it`,
      bundleId: p.bundleId,
      station: p.station,
      media,
      details: {
        sequence: p.sequence,
        missing: skipped.map((n) => ({ sequence: n, refusedWith: refused.get(n) ?? null })),
      },
    });
  } else if (position.kind === 'late') {
    appendAudit(db, {
      kind: 'bundle.gap-filled',
      outcome: 'info',
      message: `bundle ${p.station} #${p.sequence} accepted late: the accepted #${position.successor} names it as its predecessor`,
      bundleId: p.bundleId,
      station: p.station,
      media,
      details: { sequence: p.sequence, successor: position.successor },
    });
  }
}
