/**
 * The steps of an import, each named for its step in docs/FORMAT.md section 6 and returning what the next one needs:
 *
 *   findBundle (1–2) → updateTrust (3r) → verifySignatures (3) → checkStatement (4) → checkState (5) →
 *   checkVolumeFiles (6) → stageVolumes (7–8) → promote (9, promote.ts)
 *
 * None of them changes the site: trust updates come back as a `TrustUpdate` the caller records (`recordTrustUpdate`)
 * when importing, and the statement checks come back as a `VerifiedBundle`.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { EcluseError } from '../sneakernet/errors.js';
import { chooseBundle, readBundleFiles, type BundleFiles } from '../sneakernet/bundle-files.js';
import type { HashPool } from '../sneakernet/digests.js';
import { parseStatement, type Statement, type Volume } from '../sneakernet/statement.js';
import { readVolume, type EntrySink } from '../sneakernet/volume-reader.js';
import type { ReadBuffers } from '../sneakernet/read-buffers.js';
import type { RevocationList } from '../keys/revocation.js';
import type { TrustAnchors } from '../keys/trust.js';
import { verifyStatementSignatures } from '../keys/verify.js';
import { passed, type CheckRecord } from './checks.js';
import { checkFreshness, timeFloor, type ChainPosition } from './freshness.js';
import { checkAdmission, type Placement } from './policy/admission.js';
import { activePolicy, type ActivePolicy } from './policy/store.js';
import { baseImageFile } from './rebuild.js';
import { adoptRevocations, heldRevocations, offeredRevocations, revokedKeysOf } from './revocations.js';
import { followRoots, pinRoots } from './root-updates.js';
import type { Site } from './site.js';
import { ArtifactStager, type StagedArtifact } from './staging.js';
import type { ChunkVerification } from './chunk-verify.js';
import { refusalNamingTheVolume, volumeFiles } from './damaged-volume.js';
import { CanonicalLayoutCheck, coveredByChunks } from '../sneakernet/volume-layout.js';
import { checkVendorEvidence } from './vendor-evidence.js';
import { checkHeldBlobs, checkStagedImage } from './registry/image-check.js';

/** Steps 1–2: the bundle folder and its small files (signatures, certificates, trust documents), read within bounds. */
export async function findBundle(media: string, bundleId?: string): Promise<BundleFiles> {
  return readBundleFiles(media, await chooseBundle(media, bundleId));
}

/** Step 3r: the trust the media proves, as new anchors and lists; nothing is recorded here. */
export interface TrustUpdate {
  /** The root in force after following the root documents (the pinned one when none is newer). */
  anchors: TrustAnchors;
  /** Newer roots proven by the media, oldest first (to pin). */
  rotations: TrustAnchors[];
  /** A newer revocation list proven by the media (to adopt), or null. */
  adopted: RevocationList | null;
  /** Key id → why, for every key revoked by the list in force after this update. */
  revoked: Map<string, string>;
}

export function updateTrust(site: Site, files: BundleFiles, now: Date): TrustUpdate {
  return trustFrom(site.anchors, heldRevocations(site.db), files, timeFloor(site.db, now));
}

/**
 * Step 3r from given anchors and revocation list (the station's, or the root-owned ones `ecluse self-update check`
 * pinned): root documents followed first (the revocation list may be signed by the new root), then the list.
 */
export function trustFrom(
  held: TrustAnchors,
  heldList: RevocationList | null,
  files: BundleFiles,
  at: Date,
): TrustUpdate {
  const rotations = followRoots(held, files.rootDocuments, at);
  const anchors = rotations[rotations.length - 1] ?? held;
  const adopted = offeredRevocations(heldList, files.revocations, anchors);
  return { anchors, rotations, adopted, revoked: revokedKeysOf(adopted ?? heldList) };
}

/** Records a trust update (import mode): it applies from now on, whatever becomes of the bundle that carried it. */
export function recordTrustUpdate(site: Site, u: TrustUpdate, media: string): void {
  pinRoots(site.db, u.rotations, media);
  if (u.adopted) adoptRevocations(site.db, u.adopted, media);
  site.anchors = u.anchors;
}

export interface SignedPayload {
  payload: Buffer;
  signers: string[];
  check: CheckRecord;
}

/** Step 3: a threshold of distinct trusted, unrevoked signers over byte-identical payloads. */
export function verifySignatures(site: Site, files: BundleFiles, trust: TrustUpdate, now: Date): SignedPayload {
  return signaturesOver(files, trust, site.threshold, timeFloor(site.db, now));
}

/** Step 3 with a given threshold and time (the station's, or the root-owned ones of `ecluse self-update check`). */
export function signaturesOver(files: BundleFiles, trust: TrustUpdate, threshold: number, at: Date): SignedPayload {
  const { payload, signers } = verifyStatementSignatures({
    signatures: files.signatures,
    certificates: files.certificates,
    anchors: trust.anchors,
    threshold,
    at,
    revoked: trust.revoked,
  });
  const names = signers.map((s) => s.name);
  return {
    payload,
    signers: names,
    check: passed('signatures', `${names.length} trusted signer(s) (${names.join(', ')}), ${threshold} required`),
  };
}

export interface CheckedStatement {
  statement: Statement;
  /** FORMAT.md 4.4: SHA-256 of the verified payload bytes. */
  statementSha256: string;
  check: CheckRecord;
}

/** Step 4: the statement, parsed from the verified payload, is the one of this bundle folder. */
export function checkStatement(files: BundleFiles, payload: Buffer): CheckedStatement {
  const statement = parseStatement(payload);
  if (statement.predicate.bundleId !== files.bundleId) {
    throw new EcluseError(
      'E_FORMAT',
      `the folder ${files.bundleId} holds the statement of bundle ${statement.predicate.bundleId}`,
      { check: 'layout' },
    );
  }
  return {
    statement,
    statementSha256: createHash('sha256').update(payload).digest('hex'),
    check: passed('statement', 'well-formed format v1 statement'),
  };
}

/** Everything the statement checks established: what steps 6–9 work from. */
export interface VerifiedBundle {
  files: BundleFiles;
  statement: Statement;
  statementSha256: string;
  signers: string[];
  policy: ActivePolicy;
  placements: Placement[];
  /** Where the bundle sits in its station's chain (next, above a gap, or late into one). */
  position: ChainPosition;
  checks: CheckRecord[];
}

/** Step 5: site, replay, order and chain, time, policy, version order, delta bases; nothing needs a volume byte. */
export function checkState(
  site: Site,
  files: BundleFiles,
  signed: SignedPayload,
  s: CheckedStatement,
  now: Date,
): VerifiedBundle {
  const policy = activePolicy(site.db);
  const fresh = checkFreshness(site.db, site.siteId, s.statement, s.statementSha256, now, policy.policy.order);
  const placements = checkAdmission(site.db, policy, s.statement, signed.signers, site.threshold);
  const here = placements.filter((p) => p.alreadyHere).map((p) => p.artifact);
  const checks: CheckRecord[] = [
    signed.check,
    s.check,
    ...fresh.checks,
    passed(
      'policy',
      `admitted by the ${policy.source} policy ${policy.digest.slice(0, 12)}: ${placements.map((p) => `${p.artifact} by rule ${p.rule}`).join(', ')}; no rollback${here.length ? `; already here: ${here.join(', ')}` : ''}`,
    ),
  ];
  // A container image's blobs that do not travel must be held here: refuse before reading a volume byte if one is not.
  const images = s.statement.predicate.artifacts.filter((a) => a.type === 'oci-image');
  if (images.length > 0) {
    const fromStore = checkHeldBlobs(site.db, images);
    checks.push(
      passed(
        'image-blobs',
        `${images.length} container image(s): every blob not carried is held here (${fromStore} taken from the registry store)`,
      ),
    );
  }
  // A delta needs its base in the store: refuse before reading a volume byte if one is missing.
  const deltas = s.statement.predicate.artifacts.flatMap((a) =>
    a.type === 'vm-image' && a.delta ? [{ ...a, delta: a.delta }] : [],
  );
  for (const a of deltas) baseImageFile(site.db, site.home.images, a);
  if (deltas.length > 0) {
    checks.push(
      passed(
        'delta-base',
        deltas
          .map((a) => `${a.name} ${a.version} rebuilt from ${a.delta.base.name} ${a.delta.base.version}`)
          .join(', '),
      ),
    );
  }
  return {
    files,
    statement: s.statement,
    statementSha256: s.statementSha256,
    signers: signed.signers,
    policy,
    placements,
    position: fresh.position,
    checks,
  };
}

/**
 * Step 6: no file in `volumes/` the statement does not name and, unless `partial` (a medium holding only some of
 * them), every volume it names. Returns the names of those present.
 */
export function checkVolumeFiles(v: VerifiedBundle, partial: boolean): string[] {
  const p = v.statement.predicate;
  const listed = new Set(p.volumes.map((x) => x.name));
  for (const name of v.files.volumeFiles) {
    if (!listed.has(name)) {
      throw new EcluseError('E_UNEXPECTED_FILE', `volumes/${name} is not named in the signed statement`, {
        check: 'volumes',
      });
    }
  }
  const present = new Set(v.files.volumeFiles);
  const missing = p.volumes.filter((x) => !present.has(x.name));
  if (missing.length > 0 && !partial) {
    const n = p.volumes.length;
    throw new EcluseError(
      'E_MISSING_VOLUME',
      `${missing.map((x) => x.name).join(', ')} of the ${n} volumes of bundle ${p.bundleId} ${missing.length === 1 ? 'is' : 'are'} not on the media`,
      { check: 'volumes', bundleId: p.bundleId },
    );
  }
  if (!partial) v.checks.push(passed('volumes-present', `${present.size} volume(s), none extra`));
  return p.volumes.map((x) => x.name).filter((n) => present.has(n));
}

export interface StagedBundle {
  /** Every artifact, in statement order, with its digests and (import) its private staging file. */
  artifacts: StagedArtifact[];
  checks: CheckRecord[];
}

export interface StageOptions {
  site: Site;
  /** The private staging folder, or null to verify only (nothing written). */
  dir: string | null;
  /** Whole digests per artifact, or (an import in chunk mode, docs/FORMAT.md 4.11) the chunk verification. */
  pool: HashPool | ChunkVerification;
  /** Computes each volume's SHA-256 in a worker of its own (default: in this thread). */
  volumePool?: HashPool<'sha256'>;
  /**
   * A volume whose every entry has a signed chunk list is checked byte for byte outside its data instead of hashed
   * (docs/FORMAT.md 4.11); false when the policy asks for every digest.
   */
  checkLayoutOnly?: boolean;
  /**
   * The buffers the media is read into (both pools hash them in place): the reader lends their pieces to the stager,
   * which gives each back once written and hashed. Default: the reader's own, and copies.
   */
  buffers?: ReadBuffers;
  onStager?: (stager: ArtifactStager) => void;
  onProgress?: (bytes: number, total: number) => void;
  signal?: AbortSignal;
  readRate?: number;
}

/** Steps 7–8 (and 7v): every volume streamed once, each artifact hashed as it is staged, vendor evidence checked. */
export async function stageVolumes(v: VerifiedBundle, o: StageOptions): Promise<StagedBundle> {
  const p = v.statement.predicate;
  const stager = new ArtifactStager(
    p.artifacts,
    o.dir,
    o.pool,
    (a) => baseImageFile(o.site.db, o.site.home.images, a),
    o.buffers ?? null,
  );
  o.onStager?.(stager);
  const total = p.volumes.reduce((s, x) => s + x.size, 0);
  const files = volumeFiles(p.volumes, v.files.paths.volumes, v.files.volumeAt);
  // A volume whose data the chunk lists prove is checked byte for byte outside it, not hashed (4.11), unless the site
  // asks for every digest.
  const layoutOnly = (x: Volume) => o.checkLayoutOnly === true && coveredByChunks(x, p.artifacts);
  let done = 0;
  for (const vol of p.volumes) {
    o.signal?.throwIfAborted();
    const file = files.fileOf(vol.name);
    await readVolume(
      file,
      vol,
      guardSink(stager.sink, o.signal, o.readRate, o.buffers),
      (n) => {
        done += n;
        o.onProgress?.(done, total);
      },
      {
        hashPool: o.volumePool,
        buffers: o.buffers,
        layoutCheck: (x) => (layoutOnly(x) ? new CanonicalLayoutCheck(x, p.created, file) : null),
      },
    ).catch(async (e: unknown) => {
      // A bad chunk read from volumes checked by their layout only: the operator is told which volume is damaged
      // (7i). Only those are read again: a hashed volume already matched its signed sha256.
      if (!(e instanceof EcluseError) || o.signal?.aborted) throw e;
      throw await refusalNamingTheVolume(e, { ...files, volumes: p.volumes.filter(layoutOnly) });
    });
  }
  if (stager.staged.length !== p.artifacts.length) {
    throw new EcluseError('E_FORMAT', 'the volumes ended before every artifact was complete', { check: 'complete' });
  }
  const checks = [
    passed(
      'digests',
      `${p.volumes.length} volume(s) and ${p.artifacts.length} artifact(s) match${attestedNote(stager.staged)}`,
    ),
    ...checkStagedImages(o.site, stager.staged),
    ...(await checkVendorEvidence(v.policy, v.placements, v.statement, stager.staged)),
  ];
  return { artifacts: stager.staged, checks };
}

/**
 * Step 8i: each container image's carried blobs were verified one by one as they were staged; now its manifests are
 * parsed strictly and the blobs and platforms they name compared with the statement's (E_IMAGE_MANIFEST,
 * E_IMAGE_BLOB_MISSING).
 */
function checkStagedImages(site: Site, staged: readonly StagedArtifact[]): CheckRecord[] {
  const earlier = new Map<string, Buffer>();
  let images = 0;
  let blobs = 0;
  for (const s of staged) {
    const a = s.artifact;
    if (a.type !== 'oci-image' || !s.image) continue;
    checkStagedImage(site.db, site.home.registryBlobs, a, s.image, earlier);
    for (const [digest, bytes] of s.image.documents) earlier.set(digest, bytes);
    images++;
    blobs += s.image.files.length;
  }
  return images === 0
    ? []
    : [
        passed(
          'image-contents',
          `${images} container image(s): ${blobs} carried blob(s) each match their digest; manifests well-formed and naming exactly the listed blobs and platforms`,
        ),
      ];
}

/** What the audit says of the digests taken from the signed statement rather than computed (docs/FORMAT.md 4.8). */
function attestedNote(staged: ReadonlyArray<{ attested: string[] }>): string {
  const all = [...new Set(staged.flatMap((s) => s.attested))];
  // 4.11: the whole sha256 taken as signed once every chunk matched its signed list.
  if (all.includes('sha256')) {
    const others = all.filter((d) => d !== 'sha256').sort();
    return ` (SHA-256 of every chunk computed; the whole ${['sha256', ...others].join(', ')} as signed)`;
  }
  const taken = all.sort();
  return taken.length === 0 ? ' (every digest computed)' : ` (SHA-256 computed; ${taken.join(' and ')} as signed)`;
}

/**
 * Passes entry bytes to the stager, stopping at the first chunk after an abort. A piece lent by the reader and not
 * passed on (the abort) is given back here.
 */
function guardSink(
  sink: EntrySink,
  signal: AbortSignal | undefined,
  rate: number | undefined,
  buffers: ReadBuffers | undefined,
): EntrySink {
  if (!signal && !rate) return sink;
  return (entry, data) =>
    sink(
      entry,
      (async function* () {
        for await (const chunk of data) {
          try {
            signal?.throwIfAborted();
            if (rate) await sleep((chunk.length / rate) * 1000);
            signal?.throwIfAborted();
          } catch (e) {
            if (buffers?.owns(chunk)) buffers.release(chunk);
            throw e;
          }
          yield chunk;
        }
      })(),
    );
}
