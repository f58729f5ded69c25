/**
 * Checks of the verified statement against the station's monotonic state: destination site, replay, order and chain
 * per export station, expiry against a time floor (the later of the clock and the newest bundle accepted, so a
 * wound-back clock does not revive an expired bundle) and creation time not in the future.
 */
import { EcluseError } from '../sneakernet/errors.js';
import type { Statement } from '../sneakernet/statement.js';
import type { Db } from './db.js';

/** How far ahead of the clock a statement's creation time may be (clocks of two stations differ). */
export const CREATED_SKEW_MS = 60 * 60 * 1000;

interface StationRow {
  station: string;
  sequence: number;
  bundle_id: string;
  statement_sha256: string;
}

/** When bundle `sequence` of `station` was last refused here, and why (to explain a gap). */
function lastRefusal(db: Db, station: string, sequence: number): { at: string; code: string } | undefined {
  return db
    .prepare(
      `SELECT at, code FROM audit WHERE kind = 'import.refused' AND station = ? AND json_extract(details, '$.sequence') = ?
       ORDER BY seq DESC LIMIT 1`,
    )
    .get(station, sequence) as { at: string; code: string } | undefined;
}

/** The later of the clock and the creation time of the newest bundle accepted. */
export function timeFloor(db: Db, now: Date): Date {
  // Statements carry whole-second UTC times, so text order is time order; parse anyway rather than rely on it.
  const rows = db.prepare('SELECT created FROM bundles ORDER BY created DESC LIMIT 8').all() as Array<{
    created: string;
  }>;
  const newest = Math.max(0, ...rows.map((r) => Date.parse(r.created)).filter(Number.isFinite));
  return new Date(Math.max(now.getTime(), newest));
}

export interface CheckRecord {
  check: string;
  outcome: 'pass' | 'fail';
  detail: string;
}

/** Runs the checks in order; throws the first failure, returns the record of those that passed. */
export function checkFreshness(db: Db, siteId: string, s: Statement, now: Date): CheckRecord[] {
  const p = s.predicate;
  const passed: CheckRecord[] = [];
  const fail = (code: ConstructorParameters<typeof EcluseError>[0], check: string, message: string) =>
    new EcluseError(code, message, { check, bundleId: p.bundleId, station: p.station });

  if (p.site !== siteId)
    throw fail('E_WRONG_SITE', 'site', `bundle ${p.bundleId} is for site ${p.site}, this is site ${siteId}`);
  passed.push({ check: 'site', outcome: 'pass', detail: `for site ${siteId}` });

  const seen = db.prepare('SELECT station, sequence FROM bundles WHERE bundle_id = ?').get(p.bundleId) as
    { station: string; sequence: number } | undefined;
  if (seen) {
    throw fail('E_REPLAY', 'replay', `bundle ${p.station} #${p.sequence} (${p.bundleId}) was already imported`);
  }
  const last = db.prepare('SELECT * FROM stations WHERE station = ?').get(p.station) as StationRow | undefined;
  const lastSeq = last?.sequence ?? 0;
  if (p.sequence <= lastSeq) {
    throw fail(
      'E_REPLAY',
      'replay',
      `bundle ${p.sequence} from station ${p.station} is not newer than bundle ${lastSeq}, already imported`,
    );
  }
  if (p.sequence > lastSeq + 1) {
    const missing =
      p.sequence - 1 === lastSeq + 1 ? `bundle ${lastSeq + 1}` : `bundles ${lastSeq + 1} to ${p.sequence - 1}`;
    const refused = lastRefusal(db, p.station, lastSeq + 1);
    const was = refused
      ? ` (bundle ${lastSeq + 1} was refused here at ${refused.at}: ${refused.code}; export it again)`
      : '';
    throw fail(
      'E_SEQUENCE_GAP',
      'sequence',
      `${missing} from station ${p.station} ${p.sequence - 1 === lastSeq + 1 ? 'has' : 'have'} not been imported; this is ${p.sequence}${was}`,
    );
  }
  const chained = last
    ? p.previous?.bundleId === last.bundle_id && p.previous.statementSha256 === last.statement_sha256
    : p.previous === null;
  if (!chained) {
    throw fail(
      'E_CHAIN',
      'chain',
      last
        ? `bundle ${p.sequence} from station ${p.station} does not name bundle ${last.sequence} (${last.bundle_id}) as its predecessor`
        : `bundle 1 from station ${p.station} names a predecessor`,
    );
  }
  passed.push({
    check: 'sequence',
    outcome: 'pass',
    detail: `station ${p.station} #${p.sequence} follows #${lastSeq}`,
  });

  const floor = timeFloor(db, now);
  if (Date.parse(p.expires) <= floor.getTime()) {
    throw fail('E_EXPIRED', 'expiry', `the statement expired at ${p.expires} (time floor ${floor.toISOString()})`);
  }
  if (Date.parse(p.created) > now.getTime() + CREATED_SKEW_MS) {
    throw fail(
      'E_NOT_YET_VALID',
      'created',
      `the statement was created at ${p.created}, after this station's clock ${now.toISOString()}`,
    );
  }
  passed.push({ check: 'freshness', outcome: 'pass', detail: `created ${p.created}, expires ${p.expires}` });
  return passed;
}
