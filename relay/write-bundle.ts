/**
 * `ecluse export`, step two: `writeBundle(home, prepared, signers)` executes a plan (relay/export-plan.ts) and
 * decides nothing the plan did not. It refuses what the plan refused; on each medium it removes abandoned
 * `.partial-*` folders and checks the free space again; it writes the volumes under a hidden `.partial-<id>` folder,
 * reads every volume back, signs, fsyncs and renames the folder into place, and records the bundle in the site's
 * chain only after the rename. Anything failing (a full disk is E_NO_SPACE) takes back every folder it made.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { syncDir, writeFileSynced } from '../sneakernet/durable.js';
import { asEcluseError, EcluseError } from '../sneakernet/errors.js';
import { bundlePaths, bundlesDir, CERTIFICATE_SUFFIX, SIGNATURE_SUFFIX, TRUST_FILES } from '../sneakernet/layout.js';
import { literalSegments } from '../sneakernet/delta.js';
import { checkConsistency, parseStatement, subjectName } from '../sneakernet/statement.js';
import { bothObservers, ChunkListing } from './chunk-listing.js';
import { checkedListsFor, keepCheckedLists, type CheckedList } from './checked-chunk-lists.js';
import { encodeSigned, plannedStatementBytes, type StatementIdentity } from './bundle-statement.js';
import { bundleFilesEstimate } from './media-plan.js';
import { HashPool } from '../sneakernet/digests.js';
import { writeVolume, type VolumeHasher, type WrittenVolume } from '../sneakernet/volume-writer.js';
import { ArtifactCheck } from './artifact-check.js';
import { blobPath, type RelayHome } from './catalog.js';
import { recordExport, supersede } from './chains.js';
import { recordEvent } from './events.js';
import type { PreparedExport } from './export-plan.js';
import { imageSource } from './images/export-images.js';
import { holdFolder, releaseFolder } from './interrupt.js';

/** What export needs of a signer (keys/signer.ts provides it). */
export interface StatementSigner {
  name: string;
  keyId: string;
  certificatePem: string;
  signStatement(payload: Buffer): Promise<string>;
}

export interface WriteOptions {
  /** The site's newest revocation list (signed by the root), carried in every bundle folder's trust/. */
  revocations?: Buffer | null;
  /** Every root document of the site (root rotations), carried in trust/ so any import station can catch up. */
  rootDocuments?: Array<{ name: string; bytes: Buffer }>;
  onProgress?: (bytes: number, total: number) => void;
  /**
   * Recompute SHA-512 and MD5 of every stored artifact as well as SHA-256 before signing (`export
   * --verify-all-digests`); by default SHA-256 alone proves the bytes are the ones `relay add` hashed.
   */
  verifyAllDigests?: boolean;
  /**
   * Sign a chunk list per artifact into the statement (docs/FORMAT.md 4.11; default true). `export --no-chunks` leaves
   * them out for import stations older than 4.11. A resend writes its recorded statement as it was, lists or not. A
   * plan made without them (`ExportRequest.noChunks`, whose bundle files were counted without them) writes none.
   */
  chunks?: boolean;
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
  artifacts: PreparedExport['plan']['artifacts'];
  leftOut: PreparedExport['plan']['leftOut'];
  signers: string[];
  bytes: number;
  /** Bytes the deltas kept off the media. */
  bytesSaved: number;
  /** Bundles this one replaced (`--replace N`). */
  replaced: Array<{ sequence: number; bundleId: string }>;
  /** Abandoned `.partial-*` folders of killed exports, removed before writing. */
  removedPartials: string[];
  /** Media folders that did not exist and were made (their parent did): no stick was mounted there. */
  createdMedia: string[];
}

function noSpace(e: unknown, where: string): EcluseError | null {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  const cause = e instanceof EcluseError ? e.cause : e;
  const inner = (cause as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || inner === 'ENOSPC' || inner === 'EDQUOT') {
    return new EcluseError(
      'E_NO_SPACE',
      `${where} ran out of space while the bundle was written; nothing was kept: free some space or use a larger medium (ecluse export --plan --to MEDIA shows what each medium needs)`,
      { check: 'free-space' },
      { cause: e },
    );
  }
  return null;
}

export async function writeBundle(
  home: RelayHome,
  prepared: PreparedExport,
  signers: StatementSigner[],
  o: WriteOptions = {},
): Promise<ExportResult> {
  const { plan } = prepared;
  if (plan.refusal) {
    throw new EcluseError(
      plan.refusal.code,
      plan.refusal.message,
      plan.refusal.check ? { check: plan.refusal.check } : {},
    );
  }
  if (signers.length === 0) throw new EcluseError('E_USAGE', 'at least one --signer is required');
  if (new Set(signers.map((s) => s.keyId)).size !== signers.length) {
    throw new EcluseError('E_USAGE', 'the same signer key was given twice');
  }
  const media = plan.media.map((m) => m.path).filter((p): p is string => p !== null);
  if (media.length === 0 || media.length !== plan.media.length) {
    throw new EcluseError('E_USAGE', "required option '--to <MEDIA_DIR>' not specified");
  }
  const removedPartials: string[] = [];
  const trustFiles = [
    ...(o.revocations ? [{ name: TRUST_FILES[0], bytes: o.revocations }] : []),
    ...(o.rootDocuments ?? []),
  ];
  const chunks = o.chunks !== false && prepared.chunks && prepared.resendPayload === null;
  // The plan may have counted allowances for certificates and trust files it was not shown: these are the real ones.
  const statementBytes =
    prepared.resendPayload?.length ??
    plannedStatementBytes(identityOf(home, prepared), prepared.artifacts, prepared.volumes, chunks);
  const filesOn = (block: number) =>
    bundleFilesEstimate(
      {
        signers: signers.length,
        statementBytes,
        certificateBytes: signers.map((s) => Buffer.byteLength(s.certificatePem)),
        trustFileBytes: trustFiles.map((f) => f.bytes.length),
      },
      block,
    );
  for (const m of plan.media) {
    for (const p of m.abandoned) {
      await fs.promises.rm(p, { recursive: true, force: true });
      removedPartials.push(p);
    }
    // A missing last folder is made below (its parent was checked by the plan): its free space is its parent's.
    const where = m.path !== null && !fs.existsSync(m.path) ? path.dirname(path.resolve(m.path)) : (m.path ?? '');
    const free = await fs.promises.statfs(where);
    const bundleFiles = Math.max(m.bundleFiles, filesOn(Math.max(4096, free.bsize)));
    const needed = m.freeSpaceNeeded - m.bundleFiles + bundleFiles;
    if (free.bavail * free.bsize < needed) {
      throw new EcluseError(
        'E_NO_SPACE',
        `${m.path ?? ''} has ${free.bavail * free.bsize} bytes free; its share of the bundle needs ${needed} (volumes ${m.freeSpaceNeeded - m.bundleFiles - m.margin} + bundle files ${bundleFiles} + margin ${m.margin}): use a larger medium, or a smaller --media-size with one more --to`,
        { check: 'free-space' },
      );
    }
  }
  const onMedium = prepared.volumes.map((v) => plan.media.findIndex((m) => m.volumes.includes(v.name)));
  const targets = media.map((where) => ({
    media: where,
    final: bundlePaths(where, plan.bundleId),
    tmpRoot: path.join(bundlesDir(where), `.partial-${plan.bundleId}`),
    tmp: bundlePaths(where, `.partial-${plan.bundleId}`),
  }));
  const now = new Date(plan.created);
  let done = 0;
  const renamed: string[] = [];
  const createdMedia: string[] = [];
  let current = targets[0]?.media ?? '';
  try {
    for (const t of targets) {
      current = t.media;
      if (!fs.existsSync(t.media)) createdMedia.push(t.media);
      await fs.promises.mkdir(bundlesDir(t.media), { recursive: true });
      holdFolder(t.tmpRoot);
      for (const dir of [t.tmp.root, t.tmp.signatures, t.tmp.certificates, t.tmp.volumes]) await fs.promises.mkdir(dir);
    }
    const sources = prepared.artifacts.map((a) =>
      a.type === 'oci-image'
        ? imageSource(home, a)
        : {
            file: blobPath(home, a.sha256),
            ...(a.type === 'vm-image' && a.delta ? { segments: literalSegments(a.delta) } : {}),
          },
    );
    // Every artifact's bytes are checked against the catalog's digests as they are written (relay/artifact-check.ts),
    // and each volume is hashed in a thread of its own: the copying thread only moves bytes. An OCI image's carried
    // stream is checked against the digests the plan computed from its stored blobs.
    const blobFiles = sources.map((s) => ('file' in s ? s.file : ''));
    const listing = !chunks ? null : new ChunkListing(prepared.artifacts, blobFiles, prepared.volumes);
    // An image whose chunk list an earlier export proved against the catalog's sha256 is checked by that list as its
    // chunks are listed (relay/checked-chunk-lists.ts): one SHA-256 pass fewer, unless every digest is asked for.
    const byChunkList =
      listing && o.verifyAllDigests !== true
        ? listing.checkAgainst(checkedListsFor(home.db, prepared.artifacts, listing.listed))
        : new Set<number>();
    const check = new ArtifactCheck(prepared.artifacts, blobFiles, prepared.volumes, {
      allDigests: o.verifyAllDigests === true,
      byChunkList,
    });
    const volumeHashing = new HashPool(['sha256'], { slots: 4 });
    const written: WrittenVolume[] = [];
    try {
      await check.beforeWriting();
      await listing?.beforeWriting();
      for (const [i, v] of prepared.volumes.entries()) {
        const t = targets[onMedium[i] ?? 0];
        if (!t) throw new EcluseError('E_INTERNAL', `export: no medium for ${v.name}`);
        current = t.media;
        written.push(
          await writeVolume(v, sources, path.join(t.tmp.volumes, v.name), now, {
            observer: listing ? bothObservers(check, listing) : check,
            hasher: threadHasher(volumeHashing),
            onProgress: (n) => {
              done += n;
              o.onProgress?.(done, plan.bytes);
            },
          }),
        );
      }
    } finally {
      await check.close();
      await listing?.close();
      await volumeHashing.close();
    }
    // A resend writes the recorded statement again: its volumes must come out as they first did, byte for byte.
    // (No read-back of the volumes: right after the fsync the kernel serves it from memory, not from the medium, so
    // it proved nothing the hashes taken while writing do not; the artifacts were checked against the catalog.)
    if (prepared.resendPayload !== null) {
      const recorded = parseVolumesOf(prepared);
      for (const [i, v] of prepared.volumes.entries()) {
        if (written[i]?.sha256 !== recorded[i]) {
          throw new EcluseError(
            'E_DIGEST',
            `${v.name} did not come out as it was first exported (its sha256 differs from the signed statement of bundle #${plan.sequence}); nothing was kept: export it anew with ecluse export --replace ${plan.sequence} --site ${plan.site}`,
            { check: 'resent-volume', volume: v.name },
          );
        }
      }
    }
    const payload = prepared.resendPayload ?? newStatement(home, prepared, written, listing);
    checkConsistency(parseStatement(payload));
    for (const signer of signers) {
      const signature = await signer.signStatement(payload);
      for (const t of targets) {
        current = t.media;
        await writeFileSynced(path.join(t.tmp.signatures, `${signer.keyId}${SIGNATURE_SUFFIX}`), signature);
        await writeFileSynced(
          path.join(t.tmp.certificates, `${signer.keyId}${CERTIFICATE_SUFFIX}`),
          signer.certificatePem,
        );
      }
    }
    for (const t of targets) {
      current = t.media;
      if (trustFiles.length > 0) {
        await fs.promises.mkdir(t.tmp.trust);
        for (const f of trustFiles) await writeFileSynced(path.join(t.tmp.trust, f.name), f.bytes);
        await syncDir(t.tmp.trust);
      }
      for (const dir of [t.tmp.signatures, t.tmp.certificates, t.tmp.volumes, t.tmp.root]) await syncDir(dir);
    }
    for (const t of targets) {
      holdFolder(t.final.root);
      await fs.promises.rename(t.tmp.root, t.final.root);
      releaseFolder(t.tmpRoot);
      renamed.push(t.final.root);
      await syncDir(bundlesDir(t.media));
    }
    record(home, prepared, payload, media, listing?.provenLists(check.checkedInStream) ?? []);
    for (const r of renamed) releaseFolder(r);
    return {
      bundleId: plan.bundleId,
      station: plan.station,
      sequence: plan.sequence,
      site: plan.site,
      created: plan.created,
      expires: plan.expires,
      path: targets[0]?.final.root ?? '',
      media: targets.map((t, k) => ({ path: t.final.root, volumes: plan.media[k]?.volumes ?? [] })),
      volumes: written,
      artifacts: plan.artifacts,
      leftOut: plan.leftOut,
      signers: signers.map((s) => s.name),
      bytes: plan.bytes,
      bytesSaved: plan.bytesSaved,
      replaced: plan.replaces,
      removedPartials,
      createdMedia,
    };
  } catch (e) {
    for (const t of targets) {
      await fs.promises.rm(t.tmpRoot, { recursive: true, force: true });
      releaseFolder(t.tmpRoot);
    }
    // A bundle is on every medium or on none: an export that failed half-way takes back what it renamed.
    for (const root of renamed) {
      await fs.promises.rm(root, { recursive: true, force: true });
      releaseFolder(root);
    }
    throw noSpace(e, current) ?? asEcluseError(e);
  }
}

/** The volume's SHA-256 computed by a one-algorithm hash pool's thread. */
function threadHasher(pool: HashPool<'sha256'>): VolumeHasher {
  const hasher = pool.begin();
  return { update: (chunk) => hasher.update(chunk), digest: async () => (await hasher.digest()).sha256 };
}

function parseVolumesOf(prepared: PreparedExport): string[] {
  return parseStatement(prepared.resendPayload ?? Buffer.alloc(0)).predicate.volumes.map((v) => v.sha256);
}

/** The new statement's bytes: with the chunk lists (4.11), unless they would take it over its bound (then without). */
function newStatement(
  home: RelayHome,
  prepared: PreparedExport,
  written: WrittenVolume[],
  listing: ChunkListing | null,
): Buffer {
  const listed = listing ? listing.withChunks(prepared.artifacts) : null;
  return encodeSigned(identityOf(home, prepared), prepared.volumes, written, prepared.artifacts, listed);
}

/** The statement's identity as the plan decided it. */
function identityOf(home: RelayHome, prepared: PreparedExport): StatementIdentity {
  const { plan } = prepared;
  return {
    bundleId: plan.bundleId,
    station: home.station,
    sequence: plan.sequence,
    previous: plan.previous,
    site: plan.site,
    created: plan.created,
    expires: plan.expires,
  };
}

/**
 * The bundle joins the site's chain (a resend is already in it); replaced bundles leave it. The chunk lists proven in
 * this export are kept with it, for the next export of the same images.
 */
function record(
  home: RelayHome,
  prepared: PreparedExport,
  payload: Buffer,
  media: string[],
  proven: readonly CheckedList[],
): void {
  const { plan } = prepared;
  home.db.transaction(() => {
    keepCheckedLists(home.db, prepared.artifacts, proven, plan.created);
    if (plan.mode === 'resend') {
      recordEvent(home.db, 'export.resent', { site: plan.site, subject: `#${plan.sequence} ${plan.bundleId}` });
      return;
    }
    if (plan.mode === 'replace' && plan.replaces[0]) {
      supersede(home.db, plan.site, plan.replaces[0].sequence, plan.bundleId, plan.created);
      recordEvent(home.db, 'export.replaced', {
        site: plan.site,
        subject: `#${plan.sequence} ${plan.bundleId}`,
        details: { replaced: plan.replaces },
      });
    }
    recordExport(
      home.db,
      {
        site: plan.site,
        sequence: plan.sequence,
        bundle_id: plan.bundleId,
        statement_sha256: createHash('sha256').update(payload).digest('hex'),
        created: plan.created,
        expires: plan.expires,
        media: media.map((m) => path.resolve(m)).join('\n'),
        volumes: prepared.volumes.length,
        bytes: plan.bytes,
        statement: payload,
        media_bytes: plan.mediaSize,
      },
      prepared.artifactIds,
    );
    recordEvent(home.db, 'export.written', {
      site: plan.site,
      subject: `#${plan.sequence} ${plan.bundleId}`,
      details: {
        artifacts: plan.artifacts.map((a) => subjectName(a)),
        leftOut: plan.leftOut.map((a) => subjectName(a)),
        forced: plan.acknowledgement.forced,
      },
    });
  })();
}
