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
import { syncDir, writeFileSynced } from '../sneakernet/durable.js';
import { EcluseError } from '../sneakernet/errors.js';
import { bundlePaths, bundlesDir, CERTIFICATE_SUFFIX, SIGNATURE_SUFFIX, TRUST_FILES } from '../sneakernet/layout.js';
import {
  checkConsistency,
  encodeStatement,
  FORMAT_VERSION,
  isoSeconds,
  parseStatement,
  PREDICATE_TYPE,
  STATEMENT_TYPE,
  subjectName,
  type Statement,
} from '../sneakernet/statement.js';
import { literalSegments } from '../sneakernet/delta.js';
import { planVolumes } from '../sneakernet/volume-plan.js';
import { writeVolume, type WrittenVolume } from '../sneakernet/volume-writer.js';
import { blobPath, exportAt, lastExport, type ArtifactRow, type ExportRow, type RelayHome } from './catalog.js';
import { withDeltas, type DeltaSummary } from './delta.js';
import { checkAcknowledged, selectArtifacts, toArtifact } from './export-plan.js';

export { planExport, type ExportPlan } from './export-plan.js';

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
  /** Every root document of the site (root rotations), carried in trust/ so any import station can catch up. */
  rootDocuments?: Array<{ name: string; bytes: Buffer }>;
  /** Leave the vendor evidence out of the statement (for import stations older than format 4.5). */
  noEvidence?: boolean;
  /** Send every artifact whole, even where the import station holds an earlier release (format 4.6). */
  noDelta?: boolean;
  /** Build on a bundle the import station has not acknowledged in a receipt yet. */
  force?: boolean;
  /**
   * Replace bundle N and any written after it (`--replace N`: lost, expired, or refused inside): a new bundle with
   * sequence N chained onto N-1, carrying what the site lacks now; the old ones are recorded as superseded.
   */
  replace?: number;
  /** Rewrite an earlier bundle exactly (`--resend N`): its statement bytes as recorded, signed again. */
  resend?: { sequence: number; statement: Statement; payload: Buffer };
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
  artifacts: Array<{ name: string; version: string; size: number; sha256: string; delta?: DeltaSummary }>;
  signers: string[];
  bytes: number;
  /** Bytes the deltas kept off the media. */
  bytesSaved: number;
  /** Bundles this one replaced (`--replace N`). */
  replaced: Array<{ sequence: number; bundleId: string }>;
}

export async function exportBundle(home: RelayHome, o: ExportOptions): Promise<ExportResult> {
  const keyIds = new Set(o.signers.map((s) => s.keyId));
  if (o.signers.length === 0) throw new EcluseError('E_USAGE', 'at least one --signer is required');
  if (keyIds.size !== o.signers.length) throw new EcluseError('E_USAGE', 'the same signer key was given twice');
  if (o.resend && o.replace !== undefined)
    throw new EcluseError('E_USAGE', '--resend and --replace do not go together');
  if (!o.resend) checkAcknowledged(home, o.site, o.force ?? false, o.replace);
  const { rows, basis } = o.resend
    ? { rows: resendRows(home, o.resend.statement), basis: 'resend' }
    : selectArtifacts(home, o.site, o.all, o.replace);
  if (rows.length === 0) {
    throw new EcluseError(
      'E_NOTHING_TO_EXPORT',
      basis === 'not exported yet'
        ? 'nothing was added since the last export (use --all to export everything again)'
        : `the import station already has everything (${basis}; use --all to export everything again)`,
    );
  }
  for (const row of rows) {
    const st = await fs.promises.stat(blobPath(home, row.sha256)).catch(() => null);
    if (!st || st.size !== row.size) {
      throw new EcluseError('E_IO', `the stored copy of ${row.name} ${row.version} is missing or damaged`);
    }
  }
  const { artifacts, deltas } = o.resend
    ? { artifacts: o.resend.statement.predicate.artifacts, deltas: [] }
    : await withDeltas(
        home,
        o.site,
        rows,
        rows.map((r) => toArtifact(r, !o.noEvidence)),
        o.noDelta ?? false,
      );
  const plan = o.resend
    ? o.resend.statement.predicate.volumes.map((v) => ({ name: v.name, entries: v.entries, size: v.size }))
    : planVolumes(artifacts, o.mediaBytes);
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
  const previous = o.replace !== undefined ? exportAt(home.db, o.replace - 1) : lastExport(home.db);
  const rp = o.resend?.statement.predicate;
  // A resent bundle is the same bundle: same statement, so the same tar mtime (its creation time) and bytes.
  const now = rp ? new Date(rp.created) : (o.now ?? new Date());
  const created = rp ? rp.created : isoSeconds(now);
  const expires = rp ? rp.expires : isoSeconds(new Date(now.getTime() + o.expiresInMs));
  const bundleId = rp ? rp.bundleId : randomUUID();
  const sequence = rp ? rp.sequence : (previous?.sequence ?? 0) + 1;

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
    const sources = artifacts.map((a) => ({
      file: blobPath(home, a.sha256),
      ...(a.delta ? { segments: literalSegments(a.delta) } : {}),
    }));
    const written: WrittenVolume[] = [];
    for (const [i, v] of plan.entries()) {
      const tmp = targets[onMedium[i] ?? 0]?.tmp;
      if (!tmp)
        throw new EcluseError(
          'E_INTERNAL',
          `volume ${v.name} was planned onto no medium (a bug: report it with this line)`,
        );
      written.push(
        await writeVolume(v, sources, path.join(tmp.volumes, v.name), now, (n) => {
          done += n;
          o.onProgress?.(done, total);
        }),
      );
    }
    // Read every volume back from the media: what the import station will read is what was meant to be written.
    for (const [i, v] of plan.entries()) {
      const tmp = targets[onMedium[i] ?? 0]?.tmp;
      const file = path.join(tmp?.volumes ?? '', v.name);
      const h = createHash('sha256');
      for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) h.update(chunk as Buffer);
      const expected = rp ? rp.volumes[i]?.sha256 : written[i]?.sha256;
      if (h.digest('hex') !== expected) {
        throw new EcluseError(
          'E_IO',
          `${v.name} read back from ${targets[onMedium[i] ?? 0]?.media ?? ''} differs from what was ${rp ? 'first exported' : 'written'}: the media is faulty or the stored blob changed`,
        );
      }
    }
    const statement: Statement = o.resend
      ? o.resend.statement
      : {
          _type: STATEMENT_TYPE,
          subject: artifacts.map((a) => ({ name: subjectName(a), digest: { sha256: a.sha256, sha512: a.sha512 } })),
          predicateType: PREDICATE_TYPE,
          predicate: {
            formatVersion: FORMAT_VERSION,
            bundleId,
            station: home.station,
            sequence,
            previous: previous
              ? {
                  bundleId: previous.bundle_id,
                  sequence: previous.sequence,
                  statementSha256: previous.statement_sha256,
                }
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
    const payload = o.resend ? o.resend.payload : encodeStatement(statement);
    for (const signer of o.signers) {
      const signature = await signer.signStatement(payload);
      for (const { tmp } of targets) {
        await writeFileSynced(path.join(tmp.signatures, `${signer.keyId}${SIGNATURE_SUFFIX}`), signature);
        await writeFileSynced(
          path.join(tmp.certificates, `${signer.keyId}${CERTIFICATE_SUFFIX}`),
          signer.certificatePem,
        );
      }
    }
    const trustFiles = [
      ...(o.revocations ? [{ name: TRUST_FILES[0], bytes: o.revocations }] : []),
      ...(o.rootDocuments ?? []),
    ];
    if (trustFiles.length > 0) {
      for (const { tmp } of targets) {
        await fs.promises.mkdir(tmp.trust);
        for (const f of trustFiles) await writeFileSynced(path.join(tmp.trust, f.name), f.bytes);
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
    let replaced: ExportRow[] = [];
    if (!o.resend)
      home.db.transaction(() => {
        if (o.replace !== undefined) replaced = supersede(home, o.replace, bundleId, now);
        home.db
          .prepare(
            `INSERT INTO exports (sequence, bundle_id, statement_sha256, site, created, expires, media, volumes, bytes,
             statement, media_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
            payload,
            o.mediaBytes,
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
      artifacts: artifacts.map((a, i) => {
        const delta = deltas[i];
        return { name: a.name, version: a.version, size: a.size, sha256: a.sha256, ...(delta ? { delta } : {}) };
      }),
      signers: o.signers.map((s) => s.name),
      bytes: total,
      bytesSaved: deltas.reduce((n, d) => n + (d?.saved ?? 0), 0),
      replaced: replaced.map((r) => ({ sequence: r.sequence, bundleId: r.bundle_id })),
    };
  } catch (e) {
    for (const t of targets) await fs.promises.rm(t.tmpRoot, { recursive: true, force: true });
    // A bundle is on every medium or on none: an export that failed half-way takes back what it renamed.
    for (const root of renamed) await fs.promises.rm(root, { recursive: true, force: true });
    throw e;
  }
}

/** Records bundles `from` and after as superseded by `by`; what they carried counts as not exported. */
function supersede(home: RelayHome, from: number, by: string, now: Date): ExportRow[] {
  const old = home.db.prepare('SELECT * FROM exports WHERE sequence >= ? ORDER BY sequence').all(from) as ExportRow[];
  const keep = home.db.prepare(
    `INSERT INTO superseded_exports (sequence, bundle_id, statement_sha256, site, created, superseded_at, superseded_by)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  for (const r of old) {
    keep.run(r.sequence, r.bundle_id, r.statement_sha256, r.site, r.created, isoSeconds(now), by);
    home.db.prepare('UPDATE artifacts SET exported_in = NULL WHERE exported_in = ?').run(r.bundle_id);
  }
  home.db.prepare('DELETE FROM exports WHERE sequence >= ?').run(from);
  return old;
}

/** The catalog rows of a recorded bundle's artifacts (their blobs are what the volumes are rebuilt from). */
function resendRows(home: RelayHome, statement: Statement): ArtifactRow[] {
  return statement.predicate.artifacts.map((a) => {
    const row = home.db.prepare('SELECT * FROM artifacts WHERE sha256 = ?').get(a.sha256) as ArtifactRow | undefined;
    if (!row) throw new EcluseError('E_NOT_FOUND', `${a.name} ${a.version} of that bundle is no longer in the catalog`);
    return row;
  });
}

/**
 * `ecluse export --resend N`: bundle N exactly as it was first written (same statement bytes: same bundle id,
 * sequence, predecessor, validity, volumes), signed again. Because the statement is unchanged, the import station
 * chains it exactly as the original, and bundles exported after it still name it correctly. A bundle whose
 * statement has expired cannot be resent (the import station would refuse it, E_EXPIRED).
 */
export function resendSource(
  home: RelayHome,
  sequence: number,
  now = new Date(),
): { site: string; statement: Statement; payload: Buffer; mediaBytes: number | null } {
  const row = home.db.prepare('SELECT * FROM exports WHERE sequence = ?').get(sequence) as ExportRow | undefined;
  if (!row) throw new EcluseError('E_NOT_FOUND', `this station never wrote bundle #${sequence}`);
  if (!row.statement) {
    throw new EcluseError(
      'E_NOT_FOUND',
      `bundle #${sequence} was written before statements were kept: it cannot be resent`,
    );
  }
  const payload = Buffer.from(row.statement);
  const statement = parseStatement(payload);
  if (Date.parse(statement.predicate.expires) <= now.getTime()) {
    throw new EcluseError(
      'E_EXPIRED',
      `bundle #${sequence} expired on ${statement.predicate.expires}; it cannot be resent as it was`,
      {
        check: 'expiry',
      },
    );
  }
  return { site: row.site, statement, payload, mediaBytes: row.media_bytes ?? null };
}
