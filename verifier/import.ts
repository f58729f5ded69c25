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
import { asEcluseError, EcluseError } from '../sneakernet/errors.js';
import { chooseBundle, readBundleFiles, type BundleFiles } from '../sneakernet/bundle-files.js';
import { HashPool } from '../sneakernet/digests.js';
import { parseStatement, type Statement } from '../sneakernet/statement.js';
import { readVolume } from '../sneakernet/volume-reader.js';
import { verifyStatementSignatures } from '../keys/verify.js';
import { appendAudit } from './audit.js';
import { checkFreshness, timeFloor, type CheckRecord } from './freshness.js';
import { promote, type PromotedImage } from './promote.js';
import type { Site } from './site.js';
import { ArtifactStager } from './staging.js';

export interface ImportRequest {
  media: string;
  bundleId?: string;
  mode: 'verify' | 'import';
  now?: Date;
  onProgress?: (bytes: number, total: number) => void;
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
  files: BundleFiles;
  statement: Statement;
  statementSha256: string;
  signers: string[];
  checks: CheckRecord[];
}

/** Signatures, statement and state checks: everything that needs no volume byte. */
function verifyStatement(site: Site, files: BundleFiles, now: Date): Verified {
  const checks: CheckRecord[] = [];
  const { payload, signers } = verifyStatementSignatures({
    signatures: files.signatures,
    certificates: files.certificates,
    anchors: site.anchors,
    threshold: site.threshold,
    at: timeFloor(site.db, now),
  });
  checks.push({
    check: 'signatures',
    outcome: 'pass',
    detail: `${signers.length} trusted signer(s) (${signers.map((s) => s.name).join(', ')}), ${site.threshold} required`,
  });
  const statement = parseStatement(payload);
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
  if (missing.length > 0) {
    const n = statement.predicate.volumes.length;
    throw new EcluseError(
      'E_MISSING_VOLUME',
      `${missing.map((v) => v.name).join(', ')} of the ${n} volumes of bundle ${files.bundleId} ${missing.length === 1 ? 'is' : 'are'} not on the media`,
      { check: 'volumes', bundleId: files.bundleId },
    );
  }
  checks.push({ check: 'volumes-present', outcome: 'pass', detail: `${present.size} volume(s), none extra` });
  return {
    files,
    statement,
    statementSha256: createHash('sha256').update(payload).digest('hex'),
    signers: signers.map((s) => s.name),
    checks,
  };
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
      ? path.join(site.home.staging, `import-${Date.now()}-${randomBytes(4).toString('hex')}`)
      : null;
  const pool = new HashPool();
  let stager: ArtifactStager | null = null;
  try {
    bundleId = await chooseBundle(req.media, req.bundleId);
    const files = await readBundleFiles(req.media, bundleId);
    verified = verifyStatement(site, files, now);
    const p = verified.statement.predicate;
    if (stagingDir) await fs.promises.mkdir(stagingDir, { mode: 0o700 });
    stager = new ArtifactStager(p.artifacts, stagingDir, pool);
    const total = p.volumes.reduce((s, v) => s + v.size, 0);
    let done = 0;
    for (const v of p.volumes) {
      await readVolume(path.join(files.paths.volumes, v.name), v, stager.sink, (n) => {
        done += n;
        req.onProgress?.(done, total);
      });
    }
    if (stager.staged.length !== p.artifacts.length) {
      throw new EcluseError('E_FORMAT', 'the volumes ended before every artifact was complete', { check: 'volumes' });
    }
    verified.checks.push({
      check: 'digests',
      outcome: 'pass',
      detail: `${p.volumes.length} volume(s) and ${p.artifacts.length} artifact(s) match`,
    });
    const artifacts = stager.staged.map((s) => ({
      name: s.artifact.name,
      version: s.artifact.version,
      size: s.artifact.size,
      sha256: s.digests.sha256,
      md5: s.digests.md5,
    }));
    if (req.mode === 'verify') return { bundle: summary(verified), checks: verified.checks, images: [], artifacts };
    const images = await promote(site, {
      statement: verified.statement,
      statementSha256: verified.statementSha256,
      signers: verified.signers,
      staged: stager.staged,
      checks: verified.checks,
      media: req.media,
      now,
    });
    return { bundle: summary(verified), checks: verified.checks, images, artifacts };
  } catch (e) {
    const err = asEcluseError(e);
    await stager?.abort();
    if (req.mode === 'import') recordRefusal(site, err, verified, bundleId, req.media);
    throw err;
  } finally {
    await pool.close();
    if (stagingDir) await fs.promises.rm(stagingDir, { recursive: true, force: true });
  }
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
        station: p?.station ?? null,
        media,
      });
    }
    appendAudit(site.db, {
      kind: `check.${failedCheck}`,
      outcome: 'fail',
      code: err.code,
      message: err.message,
      bundleId: p?.bundleId ?? bundleId,
      station: p?.station ?? null,
      media,
    });
    appendAudit(site.db, {
      kind: 'import.refused',
      outcome: 'refused',
      code: err.code,
      message: `${err.code}: ${err.message}`,
      bundleId: p?.bundleId ?? bundleId,
      station: p?.station ?? null,
      media,
      details: { check: failedCheck, sequence: p?.sequence ?? null },
    });
  })();
}
