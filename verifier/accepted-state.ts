/**
 * The accepted state of docs/FORMAT.md section 6, and all the SQL on it: per export station, the high-water mark (the
 * highest sequence accepted: table `stations`), and every bundle accepted with the `previous` link it signed (table
 * `bundles`), so that a late bundle can be checked against the link its accepted successor carries. Below the
 * high-water mark, a sequence not accepted is a **gap**: named (audit, status, receipt), never blocking.
 */
import { z } from 'zod';
import type { Db } from './db.js';

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
  const columns = new Set(
    (db.prepare('PRAGMA table_info(bundles)').all() as Array<{ name: string }>).map((c) => c.name),
  );
  if (!columns.has('previous_bundle_id')) db.exec('ALTER TABLE bundles ADD COLUMN previous_bundle_id TEXT');
  if (!columns.has('previous_sha256')) db.exec('ALTER TABLE bundles ADD COLUMN previous_sha256 TEXT');
}

interface StationRow {
  station: string;
  sequence: number;
  bundle_id: string;
  statement_sha256: string;
}

function highWaterOf(r: StationRow): HighWater {
  return { station: r.station, sequence: r.sequence, bundleId: r.bundle_id, statementSha256: r.statement_sha256 };
}

export function highWater(db: Db, station: string): HighWater | null {
  const r = db.prepare('SELECT * FROM stations WHERE station = ?').get(station) as StationRow | undefined;
  return r ? highWaterOf(r) : null;
}

export function highWaters(db: Db): HighWater[] {
  return (db.prepare('SELECT * FROM stations ORDER BY station').all() as StationRow[]).map(highWaterOf);
}

interface BundleRow {
  bundle_id: string;
  station: string;
  sequence: number;
  statement_sha256: string;
  previous_bundle_id: string | null;
  previous_sha256: string | null;
}

function acceptedOf(r: BundleRow): AcceptedBundle {
  return {
    bundleId: r.bundle_id,
    station: r.station,
    sequence: r.sequence,
    statementSha256: r.statement_sha256,
    previous:
      r.previous_bundle_id !== null && r.previous_sha256 !== null
        ? { bundleId: r.previous_bundle_id, statementSha256: r.previous_sha256 }
        : null,
  };
}

export function acceptedById(db: Db, bundleId: string): AcceptedBundle | null {
  const r = db.prepare('SELECT * FROM bundles WHERE bundle_id = ?').get(bundleId) as BundleRow | undefined;
  return r ? acceptedOf(r) : null;
}

export function acceptedAt(db: Db, station: string, sequence: number): AcceptedBundle | null {
  const r = db.prepare('SELECT * FROM bundles WHERE station = ? AND sequence = ? LIMIT 1').get(station, sequence) as
    BundleRow | undefined;
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

/** The last refusal here of each (station, sequence), newest wins: what a gap says about the bundle that is missing. */
function lastRefusals(db: Db): Map<string, string> {
  const rows = db
    .prepare(
      `SELECT station, json_extract(details, '$.sequence') AS sequence, code, max(seq) AS last FROM audit
       WHERE kind = 'import.refused' AND station IS NOT NULL AND json_extract(details, '$.sequence') IS NOT NULL
       GROUP BY station, json_extract(details, '$.sequence')`,
    )
    .all() as Array<{ station: string; sequence: number; code: string | null }>;
  return new Map(rows.map((r) => [`${r.station}\n${r.sequence}`, r.code ?? 'E_INTERNAL']));
}

/** When bundle `sequence` of `station` was last refused here, and why (to explain a gap). */
export function lastRefusal(db: Db, station: string, sequence: number): { at: string; code: string } | null {
  const r = db
    .prepare(
      `SELECT at, code FROM audit WHERE kind = 'import.refused' AND station = ? AND json_extract(details, '$.sequence') = ?
       ORDER BY seq DESC LIMIT 1`,
    )
    .get(station, sequence) as { at: string; code: string | null } | undefined;
  return r ? { at: r.at, code: r.code ?? 'E_INTERNAL' } : null;
}

/** Every gap below each station's high-water mark, oldest first, at most `limit` of them. */
export function gaps(db: Db, limit = MAX_GAPS_LISTED): Gap[] {
  const out: Gap[] = [];
  const refused = lastRefusals(db);
  const sequencesOf = db.prepare('SELECT DISTINCT sequence FROM bundles WHERE station = ? ORDER BY sequence');
  for (const h of highWaters(db)) {
    const accepted = (sequencesOf.all(h.station) as Array<{ sequence: number }>).map((r) => r.sequence);
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
  const acceptedEvent = db.prepare(
    "SELECT details FROM audit WHERE bundle_id = ? AND kind = 'import.accepted' ORDER BY seq DESC LIMIT 1",
  );
  for (const h of highWaters(db)) {
    const row = acceptedEvent.get(h.bundleId) as { details: string } | undefined;
    for (const use of row ? deltaBasesIn(row.details) : []) {
      out.push({ ...use, station: h.station, sequence: h.sequence, why: 'newest-accepted', code: null });
    }
  }
  const refused = db
    .prepare(
      `SELECT station, json_extract(details, '$.sequence') AS sequence, code, details FROM audit
       WHERE kind = 'import.refused' AND station IS NOT NULL AND json_extract(details, '$.deltaBases[0]') IS NOT NULL
       ORDER BY seq DESC LIMIT 1000`,
    )
    .all() as Array<{ station: string; sequence: number | null; code: string | null; details: string }>;
  for (const r of refused) {
    if (typeof r.sequence !== 'number' || acceptedAt(db, r.station, r.sequence)) continue;
    for (const use of deltaBasesIn(r.details)) {
      out.push({ ...use, station: r.station, sequence: r.sequence, why: 'refused', code: r.code });
    }
  }
  return out;
}
