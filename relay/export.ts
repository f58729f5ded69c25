/**
 * `ecluse export`: writes everything added since the last export (or everything, with `all`) as one signed bundle.
 *
 * The bundle is written under a hidden temporary folder on the media, every file fsynced, and renamed into place
 * only when complete, so an interrupted export never leaves something that looks like a bundle. The export is
 * recorded (sequence, bundle id, statement digest) only after the rename: the next export names it as previous.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, randomUUID } from 'node:crypto';
import { EcluseError } from '../sneakernet/errors.js';
import { bundlePaths, bundlesDir, CERTIFICATE_SUFFIX, SIGNATURE_SUFFIX, TRUST_FILES } from '../sneakernet/layout.js';
import {
  encodeStatement,
  FORMAT_VERSION,
  PREDICATE_TYPE,
  STATEMENT_TYPE,
  subjectName,
  type Artifact,
  type Statement,
} from '../sneakernet/statement.js';
import { checkConsistency } from '../sneakernet/statement.js';
import { planVolumes } from '../sneakernet/volume-plan.js';
import { writeVolume, type WrittenVolume } from '../sneakernet/volume-writer.js';
import { blobPath, lastExport, type ArtifactRow, type RelayHome } from './catalog.js';

/** What export needs of a signer (keys/signer.ts provides it). */
export interface StatementSigner {
  name: string;
  keyId: string;
  certificatePem: string;
  signStatement(payload: Buffer): Promise<string>;
}

export interface ExportOptions {
  /**
   * Where the media is mounted. Several media: each gets the signatures and certificates and a contiguous share of
   * the volumes (in order, at least one each), so the bundle travels over several sticks.
   */
  media: string | string[];
  site: string;
  signers: StatementSigner[];
  mediaBytes: number;
  expiresInMs: number;
  all: boolean;
  /** The site's newest revocation list (signed by the root), carried in every bundle folder's trust/. */
  revocations?: Buffer | null;
  now?: Date;
  onProgress?: (bytes: number, total: number) => void;
}

export interface ExportResult {
  bundleId: string;
  station: string;
  sequence: number;
  site: string;
  created: string;
  expires: string;
  /** The bundle folder on the first medium. */
  path: string;
  /** Every medium and the volumes written on it. */
  media: Array<{ path: string; volumes: string[] }>;
  volumes: WrittenVolume[];
  artifacts: Array<{ name: string; version: string; size: number; sha256: string }>;
  signers: string[];
  bytes: number;
}

const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

function toArtifact(row: ArtifactRow): Artifact {
  return {
    name: row.name,
    version: row.version,
    type: 'vm-image',
    size: row.size,
    sha256: row.sha256,
    sha512: row.sha512,
    diskFormat: row.disk_format as Artifact['diskFormat'],
    containerFormat: row.container_format as Artifact['containerFormat'],
    properties: JSON.parse(row.properties) as Record<string, string>,
    provenance: { vendor: row.vendor, source: row.source, addedAt: row.added_at },
  };
}

async function syncDir(dir: string): Promise<void> {
  const fd = await fs.promises.open(dir, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

async function writeSynced(file: string, data: string | Buffer): Promise<void> {
  const fd = await fs.promises.open(file, 'wx', 0o644);
  try {
    await fd.writeFile(data);
    await fd.sync();
  } finally {
    await fd.close();
  }
}

export async function exportBundle(home: RelayHome, o: ExportOptions): Promise<ExportResult> {
  const keyIds = new Set(o.signers.map((s) => s.keyId));
  if (o.signers.length === 0) throw new EcluseError('E_USAGE', 'at least one --signer is required');
  if (keyIds.size !== o.signers.length) throw new EcluseError('E_USAGE', 'the same signer key was given twice');
  const rows = home.db
    .prepare(`SELECT * FROM artifacts ${o.all ? '' : 'WHERE exported_in IS NULL'} ORDER BY id`)
    .all() as ArtifactRow[];
  if (rows.length === 0) {
    throw new EcluseError(
      'E_NOTHING_TO_EXPORT',
      'nothing was added since the last export (use --all to export everything again)',
    );
  }
  for (const row of rows) {
    const st = await fs.promises.stat(blobPath(home, row.sha256)).catch(() => null);
    if (!st || st.size !== row.size) {
      throw new EcluseError('E_IO', `the stored copy of ${row.name} ${row.version} is missing or damaged`);
    }
  }
  const artifacts = rows.map(toArtifact);
  const plan = planVolumes(artifacts, o.mediaBytes);
  const mediaList = typeof o.media === 'string' ? [o.media] : o.media;
  if (mediaList.length === 0) throw new EcluseError('E_USAGE', 'at least one --to is required');
  if (new Set(mediaList.map((m) => path.resolve(m))).size !== mediaList.length) {
    throw new EcluseError('E_USAGE', 'the same media was given twice');
  }
  if (mediaList.length > plan.length) {
    throw new EcluseError(
      'E_USAGE',
      `the bundle has ${plan.length} volume(s) of at most ${o.mediaBytes} bytes: give at most ${plan.length} --to (or a smaller --media-size)`,
    );
  }
  // Medium k holds volumes [share(k), share(k + 1)): contiguous, in order, at least one each.
  const share = (k: number) => Math.floor((k * plan.length) / mediaList.length);
  const onMedium = plan.map((_, i) => mediaList.findIndex((_m, k) => i >= share(k) && i < share(k + 1)));
  const previous = lastExport(home.db);
  const now = o.now ?? new Date();
  const created = isoSeconds(now);
  const expires = isoSeconds(new Date(now.getTime() + o.expiresInMs));
  const bundleId = randomUUID();
  const sequence = (previous?.sequence ?? 0) + 1;

  const targets = mediaList.map((media, k) => ({
    media,
    final: bundlePaths(media, bundleId),
    tmpRoot: path.join(bundlesDir(media), `.partial-${bundleId}`),
    tmp: bundlePaths(media, `.partial-${bundleId}`),
    bytes: plan.filter((_, i) => onMedium[i] === k).reduce((s, v) => s + v.size, 0),
  }));
  for (const t of targets) {
    await fs.promises.mkdir(bundlesDir(t.media), { recursive: true });
    const free = await fs.promises.statfs(path.dirname(t.tmpRoot)).catch(() => null);
    if (free && free.bavail * free.bsize < t.bytes + 1024 * 1024) {
      throw new EcluseError(
        'E_IO',
        `${t.media} has ${free.bavail * free.bsize} bytes free; its share of the bundle needs ${t.bytes}`,
      );
    }
  }
  const total = plan.reduce((s, v) => s + v.size, 0);
  let done = 0;
  const renamed: string[] = [];
  try {
    for (const { tmp } of targets) {
      for (const dir of [tmp.root, tmp.signatures, tmp.certificates, tmp.volumes]) await fs.promises.mkdir(dir);
    }
    const sources = artifacts.map((a) => ({ file: blobPath(home, a.sha256) }));
    const written: WrittenVolume[] = [];
    for (const [i, v] of plan.entries()) {
      const tmp = targets[onMedium[i] ?? 0]?.tmp;
      if (!tmp) throw new Error('export: no medium for a volume');
      written.push(
        await writeVolume(v, sources, path.join(tmp.volumes, v.name), now, (n) => {
          done += n;
          o.onProgress?.(done, total);
        }),
      );
    }
    const statement: Statement = {
      _type: STATEMENT_TYPE,
      subject: artifacts.map((a) => ({ name: subjectName(a), digest: { sha256: a.sha256, sha512: a.sha512 } })),
      predicateType: PREDICATE_TYPE,
      predicate: {
        formatVersion: FORMAT_VERSION,
        bundleId,
        station: home.station,
        sequence,
        previous: previous
          ? { bundleId: previous.bundle_id, sequence: previous.sequence, statementSha256: previous.statement_sha256 }
          : null,
        site: o.site,
        created,
        expires,
        volumes: plan.map((v, i) => ({
          name: v.name,
          size: written[i]?.size ?? 0,
          sha256: written[i]?.sha256 ?? '',
          entries: v.entries.map((e) => ({ path: e.path, artifact: e.artifact, offset: e.offset, size: e.size })),
        })),
        artifacts,
      },
    };
    checkConsistency(statement);
    const payload = encodeStatement(statement);
    for (const signer of o.signers) {
      const signature = await signer.signStatement(payload);
      for (const { tmp } of targets) {
        await writeSynced(path.join(tmp.signatures, `${signer.keyId}${SIGNATURE_SUFFIX}`), signature);
        await writeSynced(path.join(tmp.certificates, `${signer.keyId}${CERTIFICATE_SUFFIX}`), signer.certificatePem);
      }
    }
    if (o.revocations) {
      for (const { tmp } of targets) {
        await fs.promises.mkdir(tmp.trust);
        await writeSynced(path.join(tmp.trust, TRUST_FILES[0]), o.revocations);
        await syncDir(tmp.trust);
      }
    }
    for (const { tmp } of targets) {
      for (const dir of [tmp.signatures, tmp.certificates, tmp.volumes, tmp.root]) await syncDir(dir);
    }
    for (const t of targets) {
      await fs.promises.rename(t.tmp.root, t.final.root);
      renamed.push(t.final.root);
      await syncDir(bundlesDir(t.media));
    }
    const statementSha256 = createHash('sha256').update(payload).digest('hex');
    home.db.transaction(() => {
      home.db
        .prepare(
          `INSERT INTO exports (sequence, bundle_id, statement_sha256, site, created, expires, media, volumes, bytes)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          sequence,
          bundleId,
          statementSha256,
          o.site,
          created,
          expires,
          mediaList.map((m) => path.resolve(m)).join('\n'),
          plan.length,
          total,
        );
      const mark = home.db.prepare('UPDATE artifacts SET exported_in = ? WHERE id = ?');
      for (const row of rows) mark.run(bundleId, row.id);
    })();
    return {
      bundleId,
      station: home.station,
      sequence,
      site: o.site,
      created,
      expires,
      path: targets[0]?.final.root ?? '',
      media: targets.map((t, k) => ({
        path: t.final.root,
        volumes: plan.filter((_, i) => onMedium[i] === k).map((v) => v.name),
      })),
      volumes: written,
      artifacts: artifacts.map((a) => ({ name: a.name, version: a.version, size: a.size, sha256: a.sha256 })),
      signers: o.signers.map((s) => s.name),
      bytes: total,
    };
  } catch (e) {
    for (const t of targets) await fs.promises.rm(t.tmpRoot, { recursive: true, force: true });
    // A bundle is on every medium or on none: an export that failed half-way takes back what it renamed.
    for (const root of renamed) await fs.promises.rm(root, { recursive: true, force: true });
    throw e;
  }
}
