/**
 * What the next export carries and how it lands on media: the selection (everything new, or, once the import station
 * sends receipts, exactly what its inventory lacks), the deltas against releases it holds, and `ecluse export --plan`.
 */
import { EcluseError } from '../sneakernet/errors.js';
import { type Artifact } from '../sneakernet/statement.js';
import { vendorEvidenceSchema } from '../sneakernet/evidence.js';
import { planVolumes } from '../sneakernet/volume-plan.js';
import { exportAt, lastExport, type ArtifactRow, type RelayHome } from './catalog.js';
import { withDeltas, type DeltaSummary } from './delta.js';
import { acknowledgement } from './receipts/receipts.js';

export function toArtifact(row: ArtifactRow, evidence = true): Artifact {
  const e = evidence && row.evidence ? { evidence: vendorEvidenceSchema.parse(JSON.parse(row.evidence)) } : {};
  return {
    name: row.name,
    version: row.version,
    type: 'vm-image',
    size: row.size,
    sha256: row.sha256,
    sha512: row.sha512,
    ...(row.md5 ? { md5: row.md5 } : {}),
    diskFormat: row.disk_format as Artifact['diskFormat'],
    containerFormat: row.container_format as Artifact['containerFormat'],
    properties: JSON.parse(row.properties) as Record<string, string>,
    provenance: { vendor: row.vendor, source: row.source, addedAt: row.added_at, ...e },
  };
}

/**
 * What the next export carries. Without a receipt from the site: everything not exported yet (or everything, with
 * `all`). With one: what the import station's inventory lacks, leaving out what bundles it has not acknowledged yet
 * are carrying (they are on their way) and what bundles it acknowledged carried (it had them, and deleted them).
 */
export function selectArtifacts(
  home: RelayHome,
  site: string,
  all: boolean,
  replaceFrom?: number,
): { rows: ArtifactRow[]; basis: string } {
  if (all) return { rows: home.db.prepare('SELECT * FROM artifacts ORDER BY id').all() as ArtifactRow[], basis: 'all' };
  const ack = acknowledgement(home.db, site, home.station);
  // Bundles being replaced (`--replace N`: N and after) carry nothing anymore.
  const last = replaceFrom === undefined ? Number.MAX_SAFE_INTEGER : replaceFrom - 1;
  if (!ack) {
    return {
      rows: home.db
        .prepare(
          'SELECT * FROM artifacts WHERE exported_in IS NULL OR exported_in IN (SELECT bundle_id FROM exports WHERE sequence > ?) ORDER BY id',
        )
        .all(last) as ArtifactRow[],
      basis: 'not exported yet',
    };
  }
  const inFlight = new Set(
    (
      home.db
        .prepare('SELECT bundle_id FROM exports WHERE sequence > ? AND sequence <= ?')
        .all(ack.sequence, last) as Array<{
        bundle_id: string;
      }>
    ).map((r) => r.bundle_id),
  );
  // What a bundle the site acknowledged carried, the site has had: if its inventory lacks it now, an operator deleted
  // it there, and sending it again would only be refused as a rollback.
  const delivered = new Set(
    (
      home.db.prepare('SELECT bundle_id FROM exports WHERE sequence <= ?').all(ack.sequence) as Array<{
        bundle_id: string;
      }>
    ).map((r) => r.bundle_id),
  );
  const rows = (home.db.prepare('SELECT * FROM artifacts ORDER BY id').all() as ArtifactRow[]).filter(
    (r) =>
      !ack.inventory.has(r.sha256) && !(r.exported_in && (inFlight.has(r.exported_in) || delivered.has(r.exported_in))),
  );
  return { rows, basis: `receipt ${ack.number} of site ${site} (acknowledges #${ack.sequence})` };
}

/**
 * Refuses to chain onto a bundle the site has not acknowledged, when receipts are in use for it. With `replaceFrom`
 * (`--replace N`), the new bundle chains onto bundle N-1, and N must be one the site has not acknowledged.
 */
export function checkAcknowledged(home: RelayHome, site: string, force: boolean, replaceFrom?: number): void {
  const ack = acknowledgement(home.db, site, home.station);
  if (replaceFrom !== undefined) checkReplaceable(home, replaceFrom, ack?.sequence ?? 0, site);
  const previous = replaceFrom === undefined ? lastExport(home.db) : exportAt(home.db, replaceFrom - 1);
  if (!ack || !previous || force) return;
  if (previous.sequence > ack.sequence) {
    const next = exportAt(home.db, ack.sequence + 1);
    const refusal = next && ack.refused.findLast((r) => r.bundleId === next.bundle_id);
    throw new EcluseError(
      'E_UNACKNOWLEDGED',
      refusal
        ? `site ${site} refused bundle #${next.sequence} (${refusal.code}: ${refusal.message}): replace it with a new bundle #${next.sequence} built from what the site now holds (ecluse export --replace ${next.sequence})`
        : `site ${site} has acknowledged bundle #${ack.sequence} (receipt ${ack.number}) but this station last wrote #${previous.sequence}: import it and bring a receipt back (ecluse relay receipt import), resend it (export --resend ${ack.sequence + 1}), replace it (export --replace ${ack.sequence + 1}), or build on it anyway with --force`,
      { check: 'receipt' },
    );
  }
}

function checkReplaceable(home: RelayHome, n: number, acknowledged: number, site: string): void {
  const last = lastExport(home.db)?.sequence ?? 0;
  if (!Number.isSafeInteger(n) || n < 1 || n > last) {
    throw new EcluseError('E_NOT_FOUND', `this station has no bundle #${n} to replace (it last wrote #${last})`);
  }
  if (n <= acknowledged) {
    throw new EcluseError(
      'E_USAGE',
      `site ${site} has already imported bundle #${n} (its receipt acknowledges #${acknowledged}): it cannot be replaced`,
    );
  }
}

export interface MediumPlan {
  medium: number;
  volumes: string[];
  bytes: number;
  /** Free space the medium must have: its volumes, the signatures and certificates, and a 1 MiB margin. */
  freeSpaceNeeded: number;
}

export interface ExportPlan {
  basis: string;
  sequence: number;
  artifacts: Array<{
    name: string;
    version: string;
    size: number;
    sha256: string;
    vendor: string | null;
    evidence: boolean;
    /** Present when the artifact travels as a delta: against which release, and the bytes carried and saved. */
    delta?: DeltaSummary;
  }>;
  /** Bytes the deltas keep off the media (0 without receipts or without earlier releases inside). */
  bytesSaved: number;
  volumes: Array<{ name: string; size: number }>;
  bytes: number;
  mediaSize: number;
  /** The fewest media of `mediaSize` bytes the bundle fits on (each medium gets at least one volume). */
  mediaNeeded: number;
  media: MediumPlan[];
  /** False when a single volume plus its bundle files does not fit on one medium of `mediaSize`. */
  fits: boolean;
}

/** Estimated bytes of the bundle files besides volumes: signatures, certificates, revocations (per medium). */
const METADATA_ESTIMATE = (signers: number, artifacts: number) =>
  16 * 1024 + signers * (3 * 1024 + 2 * 1024) * 2 + artifacts * 8 * 1024;
const MARGIN = 1024 * 1024;

/** Distribution of `n` volumes over `k` media: contiguous, in order, at least one each. */
function shareOf(volumes: number, media: number): (i: number) => number {
  const share = (k: number) => Math.floor((k * volumes) / media);
  return (i) => {
    for (let k = 0; k < media; k++) if (i >= share(k) && i < share(k + 1)) return k;
    return media - 1;
  };
}

/** `ecluse export --plan`: what the next export would write, on how many media, needing how much free space each. */
export async function planExport(
  home: RelayHome,
  o: {
    site: string;
    mediaBytes: number;
    all: boolean;
    signers: number;
    force?: boolean;
    noEvidence?: boolean;
    noDelta?: boolean;
    replace?: number;
  },
): Promise<ExportPlan> {
  if (o.replace !== undefined) checkAcknowledged(home, o.site, true, o.replace);
  const { rows, basis } = selectArtifacts(home, o.site, o.all, o.replace);
  if (rows.length === 0) throw new EcluseError('E_NOTHING_TO_EXPORT', `nothing to export (${basis})`);
  const { artifacts, deltas } = await withDeltas(
    home,
    o.site,
    rows,
    rows.map((r) => toArtifact(r, !o.noEvidence)),
    o.noDelta ?? false,
  );
  const plan = planVolumes(artifacts, o.mediaBytes);
  const meta = METADATA_ESTIMATE(o.signers, artifacts.length);
  const layout = (n: number): MediumPlan[] => {
    const on = shareOf(plan.length, n);
    return Array.from({ length: n }, (_, k) => {
      const vols = plan.filter((_, i) => on(i) === k);
      const bytes = vols.reduce((x, v) => x + v.size, 0);
      return { medium: k + 1, volumes: vols.map((v) => v.name), bytes, freeSpaceNeeded: bytes + meta + MARGIN };
    });
  };
  let media = layout(plan.length);
  const fits = media.every((m) => m.freeSpaceNeeded <= o.mediaBytes);
  for (let n = 1; n <= plan.length && fits; n++) {
    const l = layout(n);
    if (l.every((m) => m.freeSpaceNeeded <= o.mediaBytes)) {
      media = l;
      break;
    }
  }
  const total = plan.reduce((x, v) => x + v.size, 0);
  return {
    basis,
    sequence: o.replace ?? (lastExport(home.db)?.sequence ?? 0) + 1,
    artifacts: rows.map((r, i) => {
      const delta = deltas[i];
      return {
        name: r.name,
        version: r.version,
        size: r.size,
        sha256: r.sha256,
        vendor: r.vendor,
        evidence: !o.noEvidence && !!r.evidence,
        ...(delta ? { delta } : {}),
      };
    }),
    bytesSaved: deltas.reduce((n, d) => n + (d?.saved ?? 0), 0),
    volumes: plan.map((v) => ({ name: v.name, size: v.size })),
    bytes: total,
    mediaSize: o.mediaBytes,
    mediaNeeded: media.length,
    media,
    fits,
  };
}
