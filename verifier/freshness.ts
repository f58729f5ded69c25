/**
 * Steps 5a–5g of docs/FORMAT.md section 6: the verified statement against the accepted state (accepted-state.ts):
 * destination site, replay, order and chain per export station, expiry against a time floor (the later of the clock
 * and the newest bundle accepted, so a wound-back clock does not revive an expired bundle) and creation time not in
 * the future.
 *
 * Order (5d) depends on the site policy's `order`: `tolerant` (default) accepts a bundle above a gap and names the gap;
 * `strict` refuses it (E_SEQUENCE_GAP). In both, a bundle below the high-water mark that was never accepted (a late
 * bundle) is accepted only when its accepted successor named it as `previous` (5e, the chain checked backwards).
 */
import { EcluseError, type ErrorCode } from '../sneakernet/errors.js';
import type { Statement } from '../sneakernet/statement.js';
import { acceptedAt, acceptedById, highWater, lastRefusal, newestCreated } from './accepted-state.js';
import { passed, type CheckName, type CheckRecord } from './checks.js';
import type { Db } from './db.js';

export type { CheckRecord } from './checks.js';

/** How far ahead of the clock a statement's creation time may be (clocks of two stations differ). */
export const CREATED_SKEW_MS = 60 * 60 * 1000;

/** The site policy's `order` (docs/FORMAT.md section 6, step 5d). */
export type OrderMode = 'tolerant' | 'strict';

/** Where an accepted bundle sits in its station's chain. */
export type ChainPosition =
  | { kind: 'next' }
  /** Above the high-water mark with `skipped` sequences never accepted in between (tolerant order only). */
  | { kind: 'ahead'; skipped: number[] }
  /** Below the high-water mark, filling a gap: its accepted `successor` named it. */
  | { kind: 'late'; successor: number };

export interface FreshnessResult {
  checks: CheckRecord[];
  position: ChainPosition;
}

/** The later of the clock and the creation time of the newest bundle accepted. */
export function timeFloor(db: Db, now: Date): Date {
  // Statements carry whole-second UTC times, so text order is time order; parse anyway rather than rely on it.
  const newest = Math.max(
    0,
    ...newestCreated(db, 8)
      .map((c) => Date.parse(c))
      .filter(Number.isFinite),
  );
  return new Date(Math.max(now.getTime(), newest));
}

function range(from: number, to: number): string {
  return from === to ? `bundle ${from}` : `bundles ${from} to ${to}`;
}

/** Runs the checks in order; throws the first failure, returns the record of those that passed. */
export function checkFreshness(
  db: Db,
  siteId: string,
  s: Statement,
  /** The statement digest (FORMAT.md 4.4) of the verified payload: what a successor's `previous` names. */
  statementSha256: string,
  now: Date,
  order: OrderMode = 'tolerant',
): FreshnessResult {
  const p = s.predicate;
  const checks: CheckRecord[] = [];
  const fail = (code: ErrorCode, check: CheckName, message: string) =>
    new EcluseError(code, message, { check, bundleId: p.bundleId, station: p.station, sequence: p.sequence });
  const from = `station ${p.station}`;

  // 5a
  if (p.site !== siteId)
    throw fail('E_WRONG_SITE', 'site', `bundle ${p.bundleId} is for site ${p.site}, this is site ${siteId}`);
  checks.push(passed('site', `for site ${siteId}`));

  // 5b, 5c
  if (acceptedById(db, p.bundleId)) {
    throw fail('E_REPLAY', 'replay', `bundle ${p.station} #${p.sequence} (${p.bundleId}) was already imported`);
  }
  const same = acceptedAt(db, p.station, p.sequence);
  if (same) {
    throw fail(
      'E_REPLAY',
      'replay',
      `bundle ${p.sequence} from ${from} was already imported (as ${same.bundleId}); this one (${p.bundleId}) is not it`,
    );
  }

  const high = highWater(db, p.station);
  const h = high?.sequence ?? 0;
  let position: ChainPosition;
  if (p.sequence > h) {
    // 5d: above the high-water mark.
    if (p.sequence > h + 1) {
      const missing = range(h + 1, p.sequence - 1);
      if (order === 'strict') {
        const refused = lastRefusal(db, p.station, h + 1);
        const was = refused ? ` (bundle ${h + 1} was refused here at ${refused.at}: ${refused.code})` : '';
        throw fail(
          'E_SEQUENCE_GAP',
          'sequence',
          `${missing} from ${from} ${p.sequence - 1 === h + 1 ? 'has' : 'have'} not been imported; this is ${p.sequence} and the site policy asks for strict order${was}`,
        );
      }
      position = { kind: 'ahead', skipped: Array.from({ length: p.sequence - 1 - h }, (_, i) => h + 1 + i) };
      checks.push(
        passed('sequence', `${from} #${p.sequence} is above #${h}: ${missing} missing (named, not blocking)`),
      );
    } else {
      position = { kind: 'next' };
      checks.push(passed('sequence', `${from} #${p.sequence} follows #${h}`));
    }
    // 5e: the predecessor, when it was accepted, is the one this bundle names.
    const before = p.sequence === h + 1 ? high : acceptedAt(db, p.station, p.sequence - 1);
    if (p.sequence === h + 1 || before) {
      const chained = before
        ? p.previous?.bundleId === before.bundleId && p.previous.statementSha256 === before.statementSha256
        : p.previous === null;
      if (!chained) {
        throw fail(
          'E_CHAIN',
          'chain',
          before
            ? `bundle ${p.sequence} from ${from} does not name bundle ${before.sequence} (${before.bundleId}) as its predecessor`
            : `bundle 1 from ${from} names a predecessor`,
        );
      }
      checks.push(
        passed('chain', before ? `names #${before.sequence} (${before.bundleId})` : 'the first of its chain'),
      );
    } else {
      checks.push(
        passed('chain', `names #${p.sequence - 1} (${p.previous?.bundleId ?? 'none'}), to be checked when it arrives`),
      );
    }
  } else {
    // 5d: a late bundle, below the high-water mark: only through the link its accepted successor signed.
    const successor = acceptedAt(db, p.station, p.sequence + 1);
    if (!successor) {
      throw fail(
        'E_SEQUENCE_GAP',
        'sequence',
        `bundle ${p.sequence + 1} from ${from}, which must name this bundle ${p.sequence} as its predecessor, has not been imported; import bundle ${p.sequence + 1} first`,
      );
    }
    checks.push(passed('sequence', `${from} #${p.sequence} is late (below #${h}): it fills a gap`));
    const named = successor.previous?.bundleId === p.bundleId && successor.previous.statementSha256 === statementSha256;
    if (!named) {
      throw fail(
        'E_CHAIN',
        'chain',
        `bundle ${p.sequence} (${p.bundleId}) from ${from} is not the bundle ${p.sequence} that the accepted bundle ${successor.sequence} names as its predecessor${successor.previous ? ` (${successor.previous.bundleId})` : ''}`,
      );
    }
    const before = acceptedAt(db, p.station, p.sequence - 1);
    if (
      before &&
      !(p.previous?.bundleId === before.bundleId && p.previous.statementSha256 === before.statementSha256)
    ) {
      throw fail(
        'E_CHAIN',
        'chain',
        `bundle ${p.sequence} from ${from} does not name bundle ${before.sequence} (${before.bundleId}) as its predecessor`,
      );
    }
    position = { kind: 'late', successor: successor.sequence };
    checks.push(passed('chain', `named as predecessor by the accepted #${successor.sequence} (${successor.bundleId})`));
  }

  // 5f, 5g
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
  checks.push(passed('freshness', `created ${p.created}, expires ${p.expires}`));
  return { checks, position };
}
