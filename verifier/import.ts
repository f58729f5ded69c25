/**
 * The import pipeline: `verify` runs every check and writes nothing; `import` also stages each artifact privately
 * while it is read (the media is read once), and promotes everything atomically when every check has passed.
 *
 * Order: find the bundle → signatures (against the pinned root, threshold of distinct signers) → statement schema →
 * site, replay, sequence, chain, expiry → files on the media → every volume and artifact digest → promotion.
 * A refusal changes nothing but the audit log; the staging folder is removed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { asEcluseError, EcluseError } from '../sneakernet/errors.js';
import { chooseBundle, readBundleFiles, type BundleFiles } from '../sneakernet/bundle-files.js';
import { HashPool } from '../sneakernet/digests.js';
import { parseStatement, type Statement } from '../sneakernet/statement.js';
import { readVolume, type EntrySink } from '../sneakernet/volume-reader.js';
import { verifyStatementSignatures } from '../keys/verify.js';
import { appendAudit } from './audit.js';
import { checkFreshness, timeFloor, type CheckRecord } from './freshness.js';
import { checkAdmission, type Placement } from './policy/admission.js';
import { activePolicy, type ActivePolicy } from './policy/store.js';
import { revokedKeys } from './revocations.js';
import { applyRootRotations } from './root-updates.js';
import { promote, type PromotedImage } from './promote.js';
import type { Site } from './site.js';
import { ArtifactStager, digestsToCompute } from './staging.js';
import { baseImageFile } from './rebuild.js';
import { checkVendorEvidence } from './vendor-evidence.js';

export interface ImportRequest {
  media: string;
  bundleId?: string;
  mode: 'verify' | 'import';
  now?: Date;
  onProgress?: (bytes: number, total: number) => void;
  /** Aborts the import (the media was removed): nothing is promoted, and the abort is not audited as a refusal. */
  signal?: AbortSignal;
  /** What the audit log names as the media (default `media`): the daemon names the stick, not its staging copy. */
  auditMedia?: string;
  /** Reads at most this many bytes per second (the daemon's --read-rate; tests pull a stick mid-import with it). */
  readRate?: number;
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

export interface ImportOutcome {
  bundle: BundleSummary;
  checks: CheckRecord[];
  images: PromotedImage[];
  /** Verify mode: the artifacts that matched. */
  artifacts: Array<{ name: string; version: string; size: number; sha256: string; md5: string }>;
}

interface Verified {
  policy: ActivePolicy;
  placements: Placement[];
  files: BundleFiles;
  statement: Statement;
  statementSha256: string;
  signers: string[];
  checks: CheckRecord[];
}

/** Signatures, statement and state checks: everything that needs no volume byte. */
function verifyStatement(site: Site, files: BundleFiles, now: Date, partial = false): Verified {
  const checks: CheckRecord[] = [];
  const { payload, signers } = verifyStatementSignatures({
    signatures: files.signatures,
    certificates: files.certificates,
    anchors: site.anchors,
    threshold: site.threshold,
    at: timeFloor(site.db, now),
    revoked: revokedKeys(site, files.revocations, { record: false, media: '' }),
  });
  checks.push({
    check: 'signatures',
    outcome: 'pass',
    detail: `${signers.length} trusted signer(s) (${signers.map((s) => s.name).join(', ')}), ${site.threshold} required`,
  });
  const statement = parseStatement(payload);
  try {
    if (statement.predicate.bundleId !== files.bundleId) {
      throw new EcluseError(
        'E_FORMAT',
        `the folder ${files.bundleId} holds the statement of bundle ${statement.predicate.bundleId}`,
        {
          check: 'layout',
        },
      );
    }
    checks.push({ check: 'statement', outcome: 'pass', detail: 'well-formed format v1 statement' });
    checks.push(...checkFreshness(site.db, site.siteId, statement, now));
    const policy = activePolicy(site.db);
    const placements = checkAdmission(
      site.db,
      policy,
      statement,
      signers.map((x) => x.name),
      site.threshold,
    );
    checks.push({
      check: 'policy',
      outcome: 'pass',
      detail: `admitted by the ${policy.source} policy ${policy.digest.slice(0, 12)}: ${placements.map((p) => `${p.artifact} by rule ${p.rule}`).join(', ')}; no rollback`,
    });
    // A delta needs its base in the store: refuse before reading a volume byte if one is missing.
    const deltas = statement.predicate.artifacts.flatMap((a) => (a.delta ? [{ ...a, delta: a.delta }] : []));
    for (const a of deltas) baseImageFile(site.db, site.home.images, a);
    if (deltas.length > 0) {
      checks.push({
        check: 'delta-base',
        outcome: 'pass',
        detail: deltas
          .map((a) => `${a.name} ${a.version} rebuilt from ${a.delta.base.name} ${a.delta.base.version}`)
          .join(', '),
      });
    }
    const listed = new Set(statement.predicate.volumes.map((v) => v.name));
    for (const name of files.volumeFiles) {
      if (!listed.has(name)) {
        throw new EcluseError('E_UNEXPECTED_FILE', `volumes/${name} is not named in the signed statement`, {
          check: 'volumes',
        });
      }
    }
    const present = new Set(files.volumeFiles);
    const missing = statement.predicate.volumes.filter((v) => !present.has(v.name));
    if (missing.length > 0 && !partial) {
      const n = statement.predicate.volumes.length;
      throw new EcluseError(
        'E_MISSING_VOLUME',
        `${missing.map((v) => v.name).join(', ')} of the ${n} volumes of bundle ${files.bundleId} ${missing.length === 1 ? 'is' : 'are'} not on the media`,
        { check: 'volumes', bundleId: files.bundleId },
      );
    }
    if (!partial) {
      checks.push({ check: 'volumes-present', outcome: 'pass', detail: `${present.size} volume(s), none extra` });
    }
    return {
      files,
      statement,
      statementSha256: createHash('sha256').update(payload).digest('hex'),
      signers: signers.map((s) => s.name),
      checks,
      policy,
      placements,
    };
  } catch (e) {
    // Whatever is refused from here on, the audit names the bundle's station and sequence (to explain later gaps).
    if (e instanceof EcluseError) {
      e.context.bundleId ??= statement.predicate.bundleId;
      e.context.station ??= statement.predicate.station;
      e.context.sequence ??= statement.predicate.sequence;
    }
    throw e;
  }
}

function summary(v: Verified): BundleSummary {
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

export async function runImport(site: Site, req: ImportRequest): Promise<ImportOutcome> {
  const now = req.now ?? new Date();
  let verified: Verified | null = null;
  let bundleId: string | null = req.bundleId ?? null;
  const stagingDir =
    req.mode === 'import'
      ? path.join(site.home.staging, `import-${process.pid}-${Date.now()}-${randomBytes(4).toString('hex')}`)
      : null;
  let pool: HashPool | null = null;
  let volumePool: HashPool<'sha256'> | null = null;
  let stager: ArtifactStager | null = null;
  try {
    bundleId = await chooseBundle(req.media, req.bundleId);
    const files = await readBundleFiles(req.media, bundleId);
    // Newer roots (rotation) and a newer revocation list, signed as they must be, apply from now on, whatever becomes
    // of this bundle; roots first, since the list may be signed by the new root. `verify` applies them in memory only.
    const record = req.mode === 'import';
    const auditMedia = req.auditMedia ?? req.media;
    applyRootRotations(site, files.rootDocuments, { record, media: auditMedia, at: timeFloor(site.db, now) });
    if (record) revokedKeys(site, files.revocations, { record, media: auditMedia });
    verified = verifyStatement(site, files, now);
    const p = verified.statement.predicate;
    if (stagingDir) await fs.promises.mkdir(stagingDir, { mode: 0o700 });
    // Two SHA-256 workers (the volume's, the artifact's) on rings of 4 MiB: the memory stays flat whatever the size.
    pool = new HashPool(digestsToCompute(p.artifacts, verified.policy.policy.verifyAllDigests === true), { slots: 4 });
    volumePool = new HashPool(['sha256'], { slots: 4 });
    stager = new ArtifactStager(p.artifacts, stagingDir, pool, (a) => baseImageFile(site.db, site.home.images, a));
    const total = p.volumes.reduce((s, v) => s + v.size, 0);
    let done = 0;
    for (const v of p.volumes) {
      req.signal?.throwIfAborted();
      await readVolume(
        path.join(files.paths.volumes, v.name),
        v,
        guardSink(stager.sink, req.signal, req.readRate),
        (n) => {
          done += n;
          req.onProgress?.(done, total);
        },
        { hashPool: volumePool },
      );
    }
    if (stager.staged.length !== p.artifacts.length) {
      throw new EcluseError('E_FORMAT', 'the volumes ended before every artifact was complete', { check: 'volumes' });
    }
    verified.checks.push({
      check: 'digests',
      outcome: 'pass',
      detail: `${p.volumes.length} volume(s) and ${p.artifacts.length} artifact(s) match${attestedNote(stager.staged)}`,
    });
    verified.checks.push(
      ...(await checkVendorEvidence(verified.policy, verified.placements, verified.statement, stager.staged)),
    );
    const artifacts = stager.staged.map((s) => ({
      name: s.artifact.name,
      version: s.artifact.version,
      size: s.artifact.size,
      sha256: s.digests.sha256,
      md5: s.digests.md5,
    }));
    req.signal?.throwIfAborted();
    if (req.mode === 'verify') return { bundle: summary(verified), checks: verified.checks, images: [], artifacts };
    const images = await promote(site, {
      statement: verified.statement,
      statementSha256: verified.statementSha256,
      policy: verified.policy,
      placements: verified.placements,
      signers: verified.signers,
      staged: stager.staged,
      checks: verified.checks,
      media: req.auditMedia ?? req.media,
      now,
    });
    return { bundle: summary(verified), checks: verified.checks, images, artifacts };
  } catch (e) {
    const err = removedOr(e, req.signal);
    await stager?.abort();
    if (req.mode === 'import' && err.code !== 'E_MEDIA_REMOVED') {
      recordRefusal(site, err, verified, bundleId, req.auditMedia ?? req.media);
    }
    throw err;
  } finally {
    await pool?.close();
    await volumePool?.close();
    if (stagingDir) await fs.promises.rm(stagingDir, { recursive: true, force: true });
  }
}

/** What the audit says of the digests taken from the signed statement rather than computed (docs/FORMAT.md 4.7). */
function attestedNote(staged: ReadonlyArray<{ attested: string[] }>): string {
  const taken = [...new Set(staged.flatMap((s) => s.attested))].sort();
  return taken.length === 0 ? ' (every digest computed)' : ` (SHA-256 computed; ${taken.join(' and ')} as signed)`;
}

/** An abort (the media was removed) wins over whatever error reading the vanished media produced. */
function removedOr(e: unknown, signal: AbortSignal | undefined): EcluseError {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof EcluseError) return reason;
    return new EcluseError('E_MEDIA_REMOVED', 'the media was removed during the import; nothing was promoted', {
      check: 'media',
    });
  }
  return asEcluseError(e);
}

/** Passes entry bytes to the stager, stopping at the first chunk after an abort. */
function guardSink(sink: EntrySink, signal: AbortSignal | undefined, rate: number | undefined): EntrySink {
  if (!signal && !rate) return sink;
  return (entry, data) =>
    sink(
      entry,
      (async function* () {
        for await (const chunk of data) {
          signal?.throwIfAborted();
          if (rate) await sleep(((chunk as Buffer).length / rate) * 1000);
          signal?.throwIfAborted();
          yield chunk as Buffer;
        }
      })(),
    );
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
 * Verifies what one medium holds of a bundle without needing every volume on it: signatures, statement, freshness,
 * policy, and no file the statement does not name. A refusal is audited (naming `auditMedia`) and thrown.
 */
export async function verifyBundleOnMedium(
  site: Site,
  media: string,
  bundleId: string,
  o: { now?: Date; auditMedia?: string } = {},
): Promise<BundleOnMedium> {
  let verified: Verified | null = null;
  try {
    const files = await readBundleFiles(media, bundleId);
    applyRootRotations(site, files.rootDocuments, {
      record: true,
      media: o.auditMedia ?? media,
      at: timeFloor(site.db, o.now ?? new Date()),
    });
    revokedKeys(site, files.revocations, { record: true, media: o.auditMedia ?? media });
    verified = verifyStatement(site, files, o.now ?? new Date(), true);
    const present = new Set(files.volumeFiles);
    return {
      bundle: summary(verified),
      statement: verified.statement,
      files,
      present: verified.statement.predicate.volumes.map((v) => v.name).filter((n) => present.has(n)),
    };
  } catch (e) {
    const err = asEcluseError(e);
    recordRefusal(site, err, verified, bundleId, o.auditMedia ?? media);
    throw err;
  }
}

function contextText(err: EcluseError, key: string): string | null {
  const v = err.context[key];
  return typeof v === 'string' ? v : null;
}

function recordRefusal(site: Site, err: EcluseError, v: Verified | null, bundleId: string | null, media: string): void {
  const p = v?.statement.predicate;
  const failedCheck = typeof err.context.check === 'string' ? err.context.check : 'import';
  site.db.transaction(() => {
    for (const c of v?.checks ?? []) {
      appendAudit(site.db, {
        kind: `check.${c.check}`,
        outcome: 'pass',
        message: c.detail,
        bundleId: p?.bundleId ?? bundleId,
        station: p?.station ?? contextText(err, 'station'),
        media,
      });
    }
    appendAudit(site.db, {
      kind: `check.${failedCheck}`,
      outcome: 'fail',
      code: err.code,
      message: err.message,
      bundleId: p?.bundleId ?? bundleId,
      station: p?.station ?? contextText(err, 'station'),
      media,
    });
    appendAudit(site.db, {
      kind: 'import.refused',
      outcome: 'refused',
      code: err.code,
      message: `${err.code}: ${err.message}`,
      bundleId: p?.bundleId ?? bundleId,
      station: p?.station ?? contextText(err, 'station'),
      media,
      details: {
        check: failedCheck,
        sequence: p?.sequence ?? (typeof err.context.sequence === 'number' ? err.context.sequence : null),
        policyDigest: activePolicy(site.db).digest,
      },
    });
  })();
}
