/**
 * The import pipeline: `verify` runs every check and writes nothing; `import` also stages each artifact privately
 * while it is read (the media is read once), and promotes everything atomically when every check has passed.
 *
 * `runImport` is the one entry point (the CLI, the daemon and any wrapper call it): it runs the named steps of
 * import-steps.ts in the order of docs/FORMAT.md section 6, then `promote`. A refusal changes nothing but the audit
 * log (refusal.ts, the one writer of `import.refused`); the staging folder is removed. Pushing the promoted images to
 * the site's own Glance is the caller's next step (`pushPromoted`), reported beside the outcome.
 */
import fs from 'node:fs';
import { asEcluseError, EcluseError } from '../sneakernet/errors.js';
import type { BundleFiles } from '../sneakernet/bundle-files.js';
import { readBundleFiles } from '../sneakernet/bundle-files.js';
import { readBundleAcross } from '../sneakernet/media-set.js';
import { HashPool } from '../sneakernet/digests.js';
import { READ_BUFFERS, ReadBuffers } from '../sneakernet/read-buffers.js';
import type { Statement } from '../sneakernet/statement.js';
import { deltaBasesOf } from './accepted-state.js';
import { appendAudit } from './audit.js';
import type { CheckRecord } from './checks.js';
import type { ChainPosition } from './freshness.js';
import {
  checkState,
  checkStatement,
  checkVolumeFiles,
  recordTrustUpdate,
  stageVolumes,
  updateTrust,
  verifySignatures,
  type VerifiedBundle,
} from './import-steps.js';
import { placePendingHandOvers } from './self-update/placing.js';
import { promote, type AlreadyHere, type PromotedImage } from './promote.js';
import type { HandedOver } from './self-update/hand-over.js';
import type { PromotedContainerImage } from './registry/promote-images.js';
import { keepNewest, retiredJson, type KeptVersion, type RetiredJson } from './retirement.js';
import { recordRefusal, refusedBundle, withRecovery, type RefusedBundle } from './refusal.js';
import type { Site } from './site.js';
import { digestsToCompute, type ArtifactStager } from './staging.js';
import { chunkVerificationFor, type ChunkVerification } from './chunk-verify.js';
import { claimStagingDir, newStagingDir, removeOrphanStaging } from './staging-area.js';
import { auditUnlessFull, checkStoreRoom } from './space.js';
import { recordInterruption } from './interruption.js';
import { imageByTag } from './registry/images.js';
import { pushToTargets } from './targets/push.js';
import { pushToRegistryTargets } from './targets/registry-push.js';
import { removedDuring } from './media-removal.js';

export type { VerifiedBundle } from './import-steps.js';

export interface ImportRequest {
  /** Where the media is mounted; several folders when one bundle's volumes are spread over several media. */
  media: string | readonly string[];
  bundleId?: string;
  mode: 'verify' | 'import';
  now?: Date;
  onProgress?: (bytes: number, total: number) => void;
  /**
   * Aborts the import: nothing is promoted, and the abort is not audited as a refusal. The media was removed
   * (E_MEDIA_REMOVED, the default reason), or the operator interrupted it (reason: an E_INTERRUPTED error, audited as
   * `import.interrupted`).
   */
  signal?: AbortSignal;
  /** What the audit log names as the media (default `media`): the daemon names the stick, not its staging copy. */
  auditMedia?: string;
  /** Reads at most this many bytes per second (the daemon's --read-rate; tests pull a stick mid-import with it). */
  readRate?: number;
  /** Where écluse's own package is handed over (docs/FORMAT.md 4.10); default /var/lib/ecluse-update/incoming. */
  updateSpool?: string;
}

export interface BundleSummary {
  id: string;
  station: string;
  sequence: number;
  site: string;
  created: string;
  expires: string;
  statementSha256: string;
  signers: string[];
  volumes: number;
  bytes: number;
}

/** Where the bundle sits in its station's chain, for `--json`: `next`, `ahead` (above a gap) or `late` (into one). */
export type ChainJson =
  { position: 'next' } | { position: 'ahead'; missing: number[] } | { position: 'late'; successor: number };

export interface ImportOutcome {
  bundle: BundleSummary;
  chain: ChainJson;
  checks: CheckRecord[];
  images: PromotedImage[];
  /** Container images now served by the registry (import mode; docs/FORMAT.md 4.9). */
  containerImages: PromotedContainerImage[];
  /** Artifacts the store already held, same version and digest: not promoted again (import mode). */
  alreadyHere: AlreadyHere[];
  /** écluse's own package handed over to the privileged installer (import mode, docs/FORMAT.md 4.10), or null. */
  handedOver: HandedOver | null;
  /** Import mode: why the package in `handedOver` could not be placed in the spool after the commit, or null. */
  handOverError: { code: string; message: string } | null;
  /** Import mode: versions the policy's `keepNewest` retired after this import, and those it had to keep. */
  retired: RetiredJson[];
  kept: KeptVersion[];
  /** Verify mode: the artifacts that matched. */
  /** `md5` is null for an oci-image (it has no Glance checksum) unless the policy asks for every digest. */
  artifacts: Array<{ name: string; version: string; size: number; sha256: string; md5: string | null }>;
}

function chainJson(p: ChainPosition): ChainJson {
  if (p.kind === 'ahead') return { position: 'ahead', missing: p.skipped.slice(0, 1000) };
  if (p.kind === 'late') return { position: 'late', successor: p.successor };
  return { position: 'next' };
}

function summary(v: VerifiedBundle): BundleSummary {
  const p = v.statement.predicate;
  return {
    id: p.bundleId,
    station: p.station,
    sequence: p.sequence,
    site: p.site,
    created: p.created,
    expires: p.expires,
    statementSha256: v.statementSha256,
    signers: v.signers,
    volumes: p.volumes.length,
    bytes: p.volumes.reduce((s, x) => s + x.size, 0),
  };
}

/**
 * Steps 3r–5 on a bundle's files: trust update (recorded when `record`), signatures, statement, state. Errors raised
 * once the statement is verified name its bundle, station and sequence (the audit explains later gaps with them).
 */
function verifyFiles(
  site: Site,
  files: BundleFiles,
  now: Date,
  o: { record: boolean; media: string; known: (b: Partial<RefusedBundle>) => void },
): VerifiedBundle {
  const trust = updateTrust(site, files, now);
  if (o.record) recordTrustUpdate(site, trust, o.media);
  const signed = verifySignatures(site, files, trust, now);
  const checked = checkStatement(files, signed.payload);
  const p = checked.statement.predicate;
  o.known({ bundleId: p.bundleId, station: p.station, sequence: p.sequence, deltaBases: deltaBasesOf(p.artifacts) });
  return checkState(site, files, signed, checked, now);
}

export async function runImport(site: Site, req: ImportRequest): Promise<ImportOutcome> {
  const now = req.now ?? new Date();
  const folders = typeof req.media === 'string' ? [req.media] : req.media;
  const media = req.auditMedia ?? folders.join(', ');
  let verified: VerifiedBundle | null = null;
  let known: Partial<RefusedBundle> = { bundleId: req.bundleId ?? null };
  const stagingDir = req.mode === 'import' ? newStagingDir(site) : null;
  const release = stagingDir ? claimStagingDir(stagingDir) : () => undefined;
  let pool: HashPool | ChunkVerification | null = null;
  let stager: ArtifactStager | null = null;
  try {
    // Staging left by an import whose process is gone (SIGKILL, power cut) goes first (audited).
    if (req.mode === 'import') removeOrphanStaging(site, media);
    // Hand-overs whose placing after their commit failed (or whose process died): placed now, or audited again.
    if (req.mode === 'import') placePendingHandOvers(site.db, { media });
    const files = await readBundleAcross(folders, req.bundleId);
    known = { bundleId: files.bundleId };
    verified = verifyFiles(site, files, now, {
      record: req.mode === 'import',
      media,
      known: (b) => (known = b),
    });
    checkVolumeFiles(verified, false);
    // Room for every artifact in the store, before a volume is opened.
    if (stagingDir) verified.checks.push(await checkStoreRoom(verified.statement, site.home.staging));
    if (stagingDir) await fs.promises.mkdir(stagingDir, { mode: 0o700 });
    // The media is read into a few reused buffers (8 MiB): memory stays flat whatever the size. SHA-256 over every
    // byte twice, where the bytes lie: the volume's in this thread as each read lands, the artifact's in a worker
    // (with md5 and sha512 only when the policy asks for every digest or the statement lacks md5, 4.8). Measured: a
    // second worker for the volume's hash cost more (memory, and CPU time under load) than it saved on two cores.
    const verifyAll = verified.policy.policy.verifyAllDigests === true;
    const buffers = new ReadBuffers();
    // A statement with signed chunk lists (4.11) is verified chunk by chunk, on two lanes in place of the artifacts'
    // worker when nothing else is computed (the whole sha256 is then attested), else on one beside it.
    const signed = verified.statement.predicate.artifacts;
    const wholePool = () =>
      new HashPool(digestsToCompute(signed, verifyAll), { slots: READ_BUFFERS, shared: buffers.shared });
    pool = chunkVerificationFor(verified.statement, verifyAll, wholePool, buffers.shared) ?? wholePool();
    // Volumes whose data the chunk lists prove are checked byte for byte outside it, not hashed (4.11), unless the
    // policy asks for every digest: then the reading thread hashes nothing.
    const checkLayoutOnly = !verifyAll;
    const staged = await stageVolumes(verified, {
      site,
      dir: stagingDir,
      pool,
      buffers,
      checkLayoutOnly,
      onStager: (s) => (stager = s),
      onProgress: req.onProgress,
      signal: req.signal,
      readRate: req.readRate,
    });
    const artifacts = staged.artifacts.map((s) => ({
      name: s.artifact.name,
      version: s.artifact.version,
      size: s.artifact.size,
      sha256: s.digests.sha256,
      md5: s.digests.md5,
    }));
    req.signal?.throwIfAborted();
    const base = { bundle: summary(verified), chain: chainJson(verified.position), artifacts };
    if (req.mode === 'verify') {
      return {
        ...base,
        checks: [...verified.checks, ...staged.checks],
        images: [],
        containerImages: [],
        alreadyHere: [],
        handedOver: null,
        handOverError: null,
        retired: [],
        kept: [],
      };
    }
    const promoted = await promote(site, verified, staged, {
      media,
      now,
      ...(req.updateSpool !== undefined ? { updateSpool: req.updateSpool } : {}),
    });
    // The policy's keepNewest, for the names this bundle brought (never undoes the import: kept ones are named).
    const pruning = await keepNewest(
      site,
      promoted.images.map((i) => i.name),
      now,
    );
    return {
      ...base,
      checks: [...verified.checks, ...staged.checks],
      ...promoted,
      retired: pruning.retired.map(retiredJson),
      kept: pruning.kept,
    };
  } catch (e) {
    const err = await removedOr(e, req.signal);
    if (known.bundleId == null && typeof err.context.bundleId === 'string') known = { bundleId: err.context.bundleId };
    // Removes (and closes) every staged file first: on a full disk the audit needs the room they took.
    await (stager as ArtifactStager | null)?.abort();
    const bundle = refusedBundle(err, known);
    if (err.code === 'E_INTERRUPTED') {
      if (req.mode === 'import') {
        throw auditUnlessFull(err, () =>
          recordInterruption(site, err, verified?.statement.predicate ?? null, bundle.bundleId, media),
        );
      }
      throw err;
    }
    if (err.code !== 'E_MEDIA_REMOVED') withRecovery(site, err, bundle);
    if (req.mode === 'import' && err.code !== 'E_MEDIA_REMOVED') {
      throw auditUnlessFull(err, () => recordRefusal(site, err, bundle, media, verified?.checks ?? []));
    }
    throw err;
  } finally {
    await pool?.close();
    if (stagingDir) await fs.promises.rm(stagingDir, { recursive: true, force: true });
    release();
  }
}

/**
 * An abort (the media was removed) wins over whatever error reading the vanished media produced, also when the read
 * error came a moment before the removal was noticed (verifier/media-removal.ts).
 */
async function removedOr(e: unknown, signal: AbortSignal | undefined): Promise<EcluseError> {
  if (await removedDuring(e, signal)) {
    const reason: unknown = signal?.reason;
    if (reason instanceof EcluseError) return reason;
    return new EcluseError('E_MEDIA_REMOVED', 'the media was removed during the import; nothing was promoted', {
      check: 'media',
    });
  }
  return asEcluseError(e);
}

/**
 * What pushing one promoted image to one of the site's own targets came to (`import --json` `targets`): a VM image to
 * a Glance target (`imageId` its id), or a container image to a registry target (`imageId` REPOSITORY:TAG).
 */
export interface TargetOutcome {
  target: string;
  imageId: string;
  outcome: 'pushed' | 'failed';
  remoteId: string | null;
  error: string | null;
}

/**
 * After a promotion: pushes the new images to the site's own Glance and registry targets (none: nothing), audits one
 * `import.targets` line, and returns each result. Never throws: a failed push is retried with `ecluse target push`.
 */
export async function pushPromoted(site: Site, outcome: ImportOutcome): Promise<TargetOutcome[]> {
  // Container images go to the registry targets (the image a promoted repository:tag now names), VM images to Glance.
  const containers = outcome.containerImages.flatMap((c) => imageByTag(site.db, c.repository, c.tag) ?? []);
  if (outcome.images.length === 0 && containers.length === 0) return [];
  const results = [
    ...(outcome.images.length === 0
      ? []
      : await pushToTargets(
          site.db,
          site.home.images,
          outcome.images.map((i) => i.id),
        )),
    ...(containers.length === 0 ? [] : await pushToRegistryTargets(site.db, site.home.registryBlobs, containers)),
  ];
  const targets = results.map((r) => ({
    target: r.target,
    imageId: r.imageId,
    outcome: r.ok ? ('pushed' as const) : ('failed' as const),
    remoteId: r.remoteId,
    error: r.ok ? null : r.message,
  }));
  if (targets.length > 0) {
    const failed = targets.filter((t) => t.outcome === 'failed');
    appendAudit(site.db, {
      kind: 'import.targets',
      outcome: failed.length ? 'fail' : 'info',
      code: failed.length ? 'E_TARGET' : null,
      message: `bundle ${outcome.bundle.station} #${outcome.bundle.sequence}: ${targets.length - failed.length} of ${targets.length} push(es) to the site's targets done${failed.length ? `; retry with "ecluse target push"` : ''}`,
      bundleId: outcome.bundle.id,
      station: outcome.bundle.station,
      details: { targets },
    });
  }
  return targets;
}

/** What the daemon learns from one medium before it has every volume of a bundle. */
export interface BundleOnMedium {
  bundle: BundleSummary;
  statement: Statement;
  files: BundleFiles;
  /** Volumes the statement names that are on this medium. */
  present: string[];
}

/**
 * Verifies what one medium holds of a bundle without needing every volume on it: steps 3r–6 (trust updates
 * recorded), no file the statement does not name. A refusal is audited (naming `auditMedia`) and thrown.
 */
export async function verifyBundleOnMedium(
  site: Site,
  media: string,
  bundleId: string,
  o: { now?: Date; auditMedia?: string } = {},
): Promise<BundleOnMedium> {
  const now = o.now ?? new Date();
  const auditMedia = o.auditMedia ?? media;
  let verified: VerifiedBundle | null = null;
  let known: Partial<RefusedBundle> = { bundleId };
  try {
    const files = await readBundleFiles(media, bundleId);
    verified = verifyFiles(site, files, now, { record: true, media: auditMedia, known: (b) => (known = b) });
    const present = checkVolumeFiles(verified, true);
    return { bundle: summary(verified), statement: verified.statement, files, present };
  } catch (e) {
    const err = asEcluseError(e);
    const bundle = refusedBundle(err, known);
    withRecovery(site, err, bundle);
    recordRefusal(site, err, bundle, auditMedia, verified?.checks ?? []);
    throw err;
  }
}
