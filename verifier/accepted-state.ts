/**
 * The accepted state of docs/FORMAT.md section 6, and all the SQL on it: per export station, the high-water mark (the
 * highest sequence accepted: table `stations`), and every bundle accepted with the `previous` link it signed (table
 * `bundles`), so that a late bundle can be checked against the link its accepted successor carries. Below the
 * high-water mark, a sequence not accepted is a **gap**: named (audit, status, receipt), never blocking.
 */
import { z } from 'zod';
import { storedRows, tableColumns } from '../sneakernet/stored-rows.js';
import { acceptedDetails, lastRefusalCodes, lastRefusalOf, refusalsWithDeltaBases } from './audit/decisions.js';
import type { Db } from './db.js';

const ADVICE = 'restore the home from its last backup: the record of what was accepted cannot be trusted as it is';
const sequence = z.number().int().positive();

export interface HighWater {
  station: string;
  sequence: number;
  bundleId: string;
  statementSha256: string;
}

export interface AcceptedBundle {
  bundleId: string;
  station: string;
  sequence: number;
  statementSha256: string;
  /** The predecessor this bundle named (null for bundle 1, and for bundles accepted before links were recorded). */
  previous: { bundleId: string; statementSha256: string } | null;
}

export interface Gap {
  station: string;
  sequence: number;
  /** The code of the last refusal of that sequence here, or null when no bundle with that sequence was seen. */
  refusedWith: string | null;
}

/** The most gaps listed (in the receipt, the status): the receipt's schema bound. */
export const MAX_GAPS_LISTED = 10_000;

/** Adds the link columns to `bundles` (idempotent: columns are only ever added). */
export function migrateAcceptedState(db: Db): void {
  const columns = new Set(tableColumns(db, 'bundles').map((c) => c.name));
  if (!columns.has('previous_bundle_id')) db.exec('ALTER TABLE bundles ADD COLUMN previous_bundle_id TEXT');
  if (!columns.has('previous_sha256')) db.exec('ALTER TABLE bundles ADD COLUMN previous_sha256 TEXT');
}

/** A row of `stations`: the high-water mark of one export station. */
const stationRow = z.object({
  station: z.string(),
  sequence,
  bundle_id: z.string(),
  statement_sha256: z.string(),
  created: z.string(),
  accepted_at: z.string(),
});
type StationRow = z.output<typeof stationRow>;
const stations = storedRows('stations', stationRow, ADVICE);

function highWaterOf(r: StationRow): HighWater {
  return { station: r.station, sequence: r.sequence, bundleId: r.bundle_id, statementSha256: r.statement_sha256 };
}

export function highWater(db: Db, station: string): HighWater | null {
  const r = stations.get(db, 'SELECT * FROM stations WHERE station = ?', station);
  return r ? highWaterOf(r) : null;
}

export function highWaters(db: Db): HighWater[] {
  return stations.all(db, 'SELECT * FROM stations ORDER BY station').map(highWaterOf);
}

/** A row of `bundles`: one bundle accepted here (`signers` is a JSON array of key ids). */
const bundleRow = z.object({
  bundle_id: z.string(),
  station: z.string(),
  sequence,
  statement_sha256: z.string(),
  created: z.string(),
  expires: z.string(),
  signers: z.string(),
  imported_at: z.string(),
  /** Absent from homes older than the links (added by migrateAcceptedState). */
  previous_bundle_id: z.string().nullish(),
  previous_sha256: z.string().nullish(),
});
export type BundleRow = z.output<typeof bundleRow>;
const bundles = storedRows('bundles', bundleRow, ADVICE);

/** The bundle accepted with this id, as stored (the web view's bundle page). */
export function bundleRecord(db: Db, bundleId: string): BundleRow | undefined {
  return bundles.get(db, 'SELECT * FROM bundles WHERE bundle_id = ?', bundleId);
}

function acceptedOf(r: BundleRow): AcceptedBundle {
  return {
    bundleId: r.bundle_id,
    station: r.station,
    sequence: r.sequence,
    statementSha256: r.statement_sha256,
    previous:
      r.previous_bundle_id != null && r.previous_sha256 != null
        ? { bundleId: r.previous_bundle_id, statementSha256: r.previous_sha256 }
        : null,
  };
}

export function acceptedById(db: Db, bundleId: string): AcceptedBundle | null {
  const r = bundleRecord(db, bundleId);
  return r ? acceptedOf(r) : null;
}

export function acceptedAt(db: Db, station: string, sequence: number): AcceptedBundle | null {
  const r = bundles.get(db, 'SELECT * FROM bundles WHERE station = ? AND sequence = ? LIMIT 1', station, sequence);
  return r ? acceptedOf(r) : null;
}

/** Records an accepted bundle; the high-water mark moves only forward (a late bundle leaves it where it is). */
export function recordAccepted(
  db: Db,
  b: AcceptedBundle & { created: string; expires: string; signers: string[]; at: string },
): void {
  db.prepare(
    `INSERT INTO stations (station, sequence, bundle_id, statement_sha256, created, accepted_at) VALUES (?, ?, ?, ?, ?, ?)
     ON CONFLICT(station) DO UPDATE SET sequence = excluded.sequence, bundle_id = excluded.bundle_id,
       statement_sha256 = excluded.statement_sha256, created = excluded.created, accepted_at = excluded.accepted_at
     WHERE excluded.sequence > stations.sequence`,
  ).run(b.station, b.sequence, b.bundleId, b.statementSha256, b.created, b.at);
  db.prepare(
    `INSERT INTO bundles (bundle_id, station, sequence, statement_sha256, created, expires, signers, imported_at,
       previous_bundle_id, previous_sha256)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    b.bundleId,
    b.station,
    b.sequence,
    b.statementSha256,
    b.created,
    b.expires,
    JSON.stringify(b.signers),
    b.at,
    b.previous?.bundleId ?? null,
    b.previous?.statementSha256 ?? null,
  );
}

/** When bundle `sequence` of `station` was last refused here, and why (to explain a gap). */
export function lastRefusal(db: Db, station: string, sequence: number): { at: string; code: string } | null {
  return lastRefusalOf(db, station, sequence);
}

const acceptedSequence = storedRows('bundles', z.object({ sequence }), ADVICE);
const createdOnly = storedRows('bundles', z.object({ created: z.string() }), ADVICE);

/** When the newest bundles accepted were created (up to `limit`, newest first): the time floor's evidence. */
export function newestCreated(db: Db, limit: number): string[] {
  return createdOnly.all(db, 'SELECT created FROM bundles ORDER BY created DESC LIMIT ?', limit).map((r) => r.created);
}

/** Every gap below each station's high-water mark, oldest first, at most `limit` of them. */
export function gaps(db: Db, limit = MAX_GAPS_LISTED): Gap[] {
  const out: Gap[] = [];
  const refused = lastRefusalCodes(db);
  for (const h of highWaters(db)) {
    const accepted = acceptedSequence
      .all(db, 'SELECT DISTINCT sequence FROM bundles WHERE station = ? ORDER BY sequence', h.station)
      .map((r) => r.sequence);
    let next = 1;
    for (const s of [...accepted, h.sequence + 1]) {
      for (let n = next; n < s && n <= h.sequence; n++) {
        if (out.length >= limit) return out;
        out.push({ station: h.station, sequence: n, refusedWith: refused.get(`${h.station}\n${n}`) ?? null });
      }
      next = Math.max(next, s + 1);
    }
  }
  return out;
}

/** A delta base a statement read here names (4.6): recorded in `import.accepted` and `import.refused` details. */
export interface DeltaBaseUse {
  /** The artifact that travels as a delta, `name@version`. */
  artifact: string;
  /** The base's SHA-256 (how the reader finds it), and its `name@version` as the statement names it. */
  sha256: string;
  base: string;
}

/** The delta bases of a statement's artifacts (empty when none travels as a delta). */
export function deltaBasesOf(
  artifacts: ReadonlyArray<{
    name: string;
    version: string;
    delta?: { base: { name: string; version: string; sha256: string } } | undefined;
  }>,
): DeltaBaseUse[] {
  return artifacts.flatMap((a) =>
    a.delta
      ? [
          {
            artifact: `${a.name}@${a.version}`,
            sha256: a.delta.base.sha256,
            base: `${a.delta.base.name}@${a.delta.base.version}`,
          },
        ]
      : [],
  );
}

const deltaBaseUse = z.array(z.strictObject({ artifact: z.string(), sha256: z.string(), base: z.string() }));

function deltaBasesIn(details: string): DeltaBaseUse[] {
  try {
    const parsed = deltaBaseUse.safeParse((JSON.parse(details) as { deltaBases?: unknown }).deltaBases);
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}

/** Why a base is still needed: the bundle that names it, and what that means for the export station. */
export interface DeltaBaseNeed extends DeltaBaseUse {
  station: string;
  sequence: number;
  /** `newest-accepted`: the export station's next bundles may be deltas against it too (until its next receipt);
   * `refused`: a refused bundle not accepted since, whose resend carries the same recipe. */
  why: 'newest-accepted' | 'refused';
  code: string | null;
}

/**
 * The delta bases the export stations may still send bundles against, as far as this station can know: those named
 * by the newest bundle accepted from each station (its next bundles are made from the same receipts), and by bundles
 * read and refused here that no bundle of the same station and sequence has replaced since (a resend carries the
 * very same recipe). A bundle made from an older receipt and not seen yet cannot be known here: docs/FORMAT.md 10.2.
 */
export function deltaBasesNeeded(db: Db): DeltaBaseNeed[] {
  const out: DeltaBaseNeed[] = [];
  for (const h of highWaters(db)) {
    const details = acceptedDetails(db, h.bundleId);
    for (const use of details !== undefined ? deltaBasesIn(details) : []) {
      out.push({ ...use, station: h.station, sequence: h.sequence, why: 'newest-accepted', code: null });
    }
  }
  const refused = refusalsWithDeltaBases(db);
  for (const r of refused) {
    if (typeof r.sequence !== 'number' || acceptedAt(db, r.station, r.sequence)) continue;
    for (const use of deltaBasesIn(r.details)) {
      out.push({ ...use, station: r.station, sequence: r.sequence, why: 'refused', code: r.code });
    }
  }
  return out;
}
