/**
 * `ecluse export`, step one: the plan. `planExport(home, request)` decides everything an export does before a byte is
 * written (which artifacts, as deltas or whole, the volumes and which medium each goes on, the free space each medium
 * needs, the acknowledgement rule, the statement's identity) and, when the export must not happen, the refusal. It
 * writes nothing. `ecluse export --plan` prints this object; `ecluse export` hands the same object to `writeBundle`.
 *
 * One resolver per mode produces the content: fresh (what the site lacks), resend (bundle N's statement as recorded),
 * replace (a new bundle N from what the site lacks now).
 */
import fs from 'node:fs';
import { randomUUID } from 'node:crypto';
import { EcluseError, type ErrorCode } from '../sneakernet/errors.js';
import { isoSeconds, type Artifact } from '../sneakernet/statement.js';
import { subjectName } from '../sneakernet/subject.js';
import { MIN_VOLUME_BYTES, planVolumes, type PlannedVolume } from '../sneakernet/volume-plan.js';
import { blobPath, type ArtifactRow, type ExportRow, type RelayHome } from './catalog.js';
import { withDeltas, type DeltaSummary } from './delta.js';
import { placeOnMedia, type MediumPlan } from './media-plan.js';
import { plannedStatementBytes, type StatementIdentity } from './bundle-statement.js';
import { resolveFresh, resolveReplace, resolveResend, type Resolved } from './export-modes.js';
import { imageSummaries, missingImageBlob, withImageBlobs, type ImageSummary } from './images/export-images.js';
import { acknowledgement } from './receipts/acknowledgement.js';

export type { MediumPlan } from './media-plan.js';

export type ExportMode =
  { kind: 'fresh' } | { kind: 'resend'; sequence: number } | { kind: 'replace'; sequence: number };

export interface ExportRequest {
  mode: ExportMode;
  /** The destination site (for a resend, optional: the site bundle N was written for). */
  site?: string;
  /** Where the media are mounted; empty for a plan that only says how many media of `mediaBytes` it needs. */
  media: string[];
  /** The size of each medium (the largest share of the bundle one medium takes, bundle files and margin included). */
  mediaBytes: number;
  /** How many signers will sign (their files are part of each medium's share). */
  signers: number;
  expiresInMs: number;
  all: boolean;
  force: boolean;
  /** Send artifacts the site refused by policy anyway. */
  includeRefused: boolean;
  noEvidence: boolean;
  noDelta: boolean;
  /** Leave the attested md5 (docs/FORMAT.md 4.8) out of the statement, for import stations older than 4.8. */
  noMd5?: boolean;
  /**
   * The bundle will carry no chunk lists (`export --no-chunks`, 4.11): its statement, in every signature file, is
   * counted without them, and `writeBundle` writes none. Absent: counted with the lists the writer computes.
   */
  noChunks?: boolean;
  /** Bytes of each signer's certificate file, when known (else an allowance each, relay/media-plan.ts). */
  certificateBytes?: number[];
  /** Bytes of each trust file the bundle carries (revocation list, root documents), when known (else an allowance). */
  trustFileBytes?: number[];
  now?: Date;
}

export interface PlannedArtifact {
  name: string;
  version: string;
  size: number;
  sha256: string;
  vendor: string | null;
  evidence: boolean;
  /** Present when the artifact travels as a delta: against which release, and the bytes carried and saved. */
  delta?: DeltaSummary;
  /** Addition (4.9): `vm-image` or `oci-image`. */
  type: Artifact['type'];
  /**
   * An OCI image: where it is served inside, its blobs, the bytes this bundle carries of it, and the blobs left out
   * because the site holds them (its newest receipt's `inventory.blobs`) or an earlier image of the bundle carries them.
   * `size` and `sha256` above are then those of its carried stream.
   */
  image?: ImageSummary;
}

export interface ExportPlan {
  mode: ExportMode['kind'];
  station: string;
  site: string;
  /** The statement's identity: the bundle this export writes. */
  bundleId: string;
  sequence: number;
  previous: { bundleId: string; sequence: number; statementSha256: string } | null;
  created: string;
  expires: string;
  basis: string;
  /** The acknowledgement rule as applied: the site's newest receipt and the bundles it has not accounted for. */
  acknowledgement: { receipt: number | null; acknowledged: number | null; lastWritten: number; forced: boolean };
  artifacts: PlannedArtifact[];
  /** Artifacts the site refused by policy, left out (`--include-refused` sends them). */
  leftOut: Array<{ name: string; version: string; sha256: string; reason: string; code: string; rule: string | null }>;
  /** Bytes the deltas keep off the media (0 without receipts or without earlier releases inside). */
  bytesSaved: number;
  volumes: Array<{ name: string; size: number }>;
  bytes: number;
  mediaSize: number;
  /** The largest volume written: the media size less the bundle files and the margin (docs/FORMAT.md 12). */
  volumeCapacity: number;
  /** The fewest media of `mediaSize` bytes the bundle fits on (each medium gets at least one volume). */
  mediaNeeded: number;
  media: MediumPlan[];
  /** False when a single volume plus its bundle files does not fit on one medium of `mediaSize`. */
  fits: boolean;
  /** Bundles of the site this one replaces (`--replace N`). */
  replaces: Array<{ sequence: number; bundleId: string }>;
  /** Why `export` would refuse to write this plan, or null when it would write it. */
  refusal: { code: ErrorCode; message: string; check?: string } | null;
}

/** What `writeBundle` needs besides the plan: the statement's artifacts, the volumes' entries, the catalog rows. */
export interface PreparedExport {
  plan: ExportPlan;
  artifacts: Artifact[];
  volumes: PlannedVolume[];
  artifactIds: number[];
  /** A resend writes these statement bytes again. */
  resendPayload: Buffer | null;
  /** Whether the plan counted chunk lists in the statement (false: `noChunks`, and none are written). */
  chunks: boolean;
}

function refusalOf(e: EcluseError): NonNullable<ExportPlan['refusal']> {
  return {
    code: e.code,
    message: e.message,
    ...(typeof e.context.check === 'string' ? { check: e.context.check } : {}),
  };
}

/** The blobs (hex) the site's newest receipt says its registry holds (none without a receipt). */
function siteBlobs(home: RelayHome, site: string): ReadonlySet<string> {
  return acknowledgement(home.db, site, home.station)?.blobs ?? new Set<string>();
}

async function missingBlob(home: RelayHome, rows: ArtifactRow[]): Promise<EcluseError | null> {
  for (const row of rows) {
    if (row.type === 'oci-image') {
      const missing = await missingImageBlob(home, row);
      if (missing) return missing;
      continue;
    }
    const st = await fs.promises.stat(blobPath(home, row.sha256)).catch(() => null);
    if (!st || st.size !== row.size) {
      return new EcluseError(
        'E_IO',
        `the stored copy of ${row.name} ${row.version} is missing or damaged: add it again (ecluse relay add FILE --name ${row.name} --version ${row.version}) or remove it (ecluse relay remove ${subjectName(row)})`,
      );
    }
  }
  return null;
}

/** One resolver per mode: what the bundle carries, its place in the site's chain, and why it may not be written. */
function resolve(home: RelayHome, request: ExportRequest, now: Date): Resolved {
  switch (request.mode.kind) {
    case 'resend':
      return resolveResend(home, request.mode.sequence, request.site, now);
    case 'replace':
      return resolveReplace(home, request.mode.sequence, request);
    case 'fresh':
      return resolveFresh(home, request);
  }
}

function previousOf(row: ExportRow | undefined): ExportPlan['previous'] {
  return row ? { bundleId: row.bundle_id, sequence: row.sequence, statementSha256: row.statement_sha256 } : null;
}

export async function planExport(home: RelayHome, request: ExportRequest): Promise<PreparedExport> {
  const now = request.now ?? new Date();
  const resolved = resolve(home, request, now);
  const rows = resolved.rows;
  const refusals: EcluseError[] = [];
  if (resolved.refusal) refusals.push(resolved.refusal);
  const blob = await missingBlob(home, rows);
  if (blob) refusals.push(blob);
  const { artifacts, deltas } =
    resolved.statement !== null
      ? { artifacts: resolved.statement.predicate.artifacts, deltas: [] as Array<DeltaSummary | undefined> }
      : await withDeltas(home, resolved.site, rows, resolved.artifacts, request.noDelta).then(async (d) => ({
          deltas: d.deltas,
          // OCI images: blobs the site's registry holds and blobs an earlier image carries stay off the media.
          artifacts: blob ? d.artifacts : await withImageBlobs(home, d.artifacts, siteBlobs(home, resolved.site)),
        }));
  const images = imageSummaries(artifacts);
  if (rows.length === 0) {
    const why = [resolved.basis];
    if (resolved.leftOut.length > 0) {
      why.push(`${resolved.leftOut.length} artifact(s) its policy refused left out, --include-refused sends them`);
    }
    refusals.push(
      new EcluseError(
        'E_NOTHING_TO_EXPORT',
        `nothing to export for site ${resolved.site} (${why.join('; ')}); use --all to export everything again`,
      ),
    );
  }
  const identity = resolved.statement?.predicate;
  const created = identity?.created ?? isoSeconds(now);
  const id: StatementIdentity = {
    bundleId: identity?.bundleId ?? randomUUID(),
    station: home.station,
    sequence: resolved.sequence,
    previous: identity ? identity.previous : previousOf(resolved.previous),
    site: resolved.site,
    created,
    expires: identity?.expires ?? isoSeconds(new Date(Date.parse(created) + request.expiresInMs)),
  };
  const chunks = request.noChunks !== true;
  const payload = resolved.payload;
  const placement = await placeOnMedia({
    media: request.media,
    mediaBytes: request.mediaBytes,
    signers: request.signers,
    artifacts: artifacts.length,
    volumes: (capacity) =>
      resolved.statement !== null
        ? resolved.statement.predicate.volumes.map((v) => ({ name: v.name, entries: v.entries, size: v.size }))
        : planVolumes(artifacts, Math.max(capacity, MIN_VOLUME_BYTES)),
    // The statement each signature file carries: a resend's as recorded, else the one writeBundle will sign.
    statementBytes: (volumes) =>
      payload !== null ? payload.length : plannedStatementBytes(id, artifacts, volumes, chunks),
    certificateBytes: request.certificateBytes,
    trustFileBytes: request.trustFileBytes,
  });
  refusals.push(...placement.refusals);
  const plan: ExportPlan = {
    mode: request.mode.kind,
    station: home.station,
    site: resolved.site,
    bundleId: id.bundleId,
    sequence: id.sequence,
    previous: id.previous,
    created,
    expires: id.expires,
    basis: resolved.basis,
    acknowledgement: resolved.acknowledgement,
    artifacts: rows.map((r, i) => {
      const delta = deltas[i];
      const image = images[i];
      const a = artifacts[i];
      return {
        name: r.name,
        version: r.version,
        type: a?.type ?? 'vm-image',
        size: image && a ? a.size : r.size,
        sha256: image && a ? a.sha256 : r.sha256,
        vendor: r.vendor,
        evidence: a?.provenance.evidence !== undefined,
        ...(delta ? { delta } : {}),
        ...(image ? { image } : {}),
      };
    }),
    leftOut: resolved.leftOut,
    bytesSaved: deltas.reduce((n, d) => n + (d?.saved ?? 0), 0),
    volumes: placement.volumes.map((v) => ({ name: v.name, size: v.size })),
    bytes: placement.volumes.reduce((n, v) => n + v.size, 0),
    mediaSize: request.mediaBytes,
    volumeCapacity: placement.capacity,
    mediaNeeded: placement.media.length,
    media: placement.media,
    fits: placement.fits,
    replaces: resolved.replaces.map((r) => ({ sequence: r.sequence, bundleId: r.bundle_id })),
    refusal: refusals[0] ? refusalOf(refusals[0]) : null,
  };
  return {
    plan,
    artifacts,
    volumes: placement.volumes,
    artifactIds: rows.map((r) => r.id),
    resendPayload: resolved.payload,
    chunks,
  };
}
