/**
 * Steps 5b–5e of docs/FORMAT.md section 6 on a real SQLite accepted state: tolerant and strict order, late bundles
 * checked backwards through the link their accepted successor signed, gaps named.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EcluseError } from '../../sneakernet/errors.js';
import type { Statement } from '../../sneakernet/statement.js';
import { gaps, highWater, migrateAcceptedState, recordAccepted } from '../../verifier/accepted-state.js';
import { openDb, type Db } from '../../verifier/db.js';
import { checkFreshness, type OrderMode } from '../../verifier/freshness.js';

const SITE = 'paris-1';
const STATION = 'relay-1';
const NOW = new Date('2026-12-01T12:00:00Z');

interface Fake {
  statement: Statement;
  sha: string;
}

const digest = (s: string) => createHash('sha256').update(s).digest('hex');

/** The statements of one station's chain 1..n (the fields steps 5a–5g read), `variant` giving another digest. */
function chain(n: number, variant = ''): Fake[] {
  const out: Fake[] = [];
  for (let i = 1; i <= n; i++) {
    const prev = out[i - 2];
    const id = digest(`bundle-${i}${variant}`).slice(0, 32);
    const predicate = {
      bundleId: id,
      station: STATION,
      sequence: i,
      site: SITE,
      created: '2026-12-01T10:00:00Z',
      expires: '2026-12-31T10:00:00Z',
      previous: prev
        ? { bundleId: prev.statement.predicate.bundleId, sequence: i - 1, statementSha256: prev.sha }
        : null,
      artifacts: [],
      volumes: [],
    };
    out.push({ statement: { predicate } as unknown as Statement, sha: digest(`statement-${i}${variant}`) });
  }
  return out;
}

let dir: string;
let db: Db;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-freshness-'));
  db = openDb(dir);
  migrateAcceptedState(db);
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function check(b: Fake, order: OrderMode = 'tolerant') {
  return checkFreshness(db, SITE, b.statement, b.sha, NOW, order);
}

function accept(b: Fake, order: OrderMode = 'tolerant') {
  const r = check(b, order);
  const p = b.statement.predicate;
  recordAccepted(db, {
    bundleId: p.bundleId,
    station: p.station,
    sequence: p.sequence,
    statementSha256: b.sha,
    previous: p.previous ? { bundleId: p.previous.bundleId, statementSha256: p.previous.statementSha256 } : null,
    created: p.created,
    expires: p.expires,
    signers: ['alice'],
    at: NOW.toISOString(),
  });
  return r.position;
}

function refused(f: () => unknown): EcluseError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EcluseError);
    return e as EcluseError;
  }
  throw new Error('not refused');
}

describe('order: tolerant', () => {
  it('accepts a bundle above a gap and names the gap; the late one fills it and leaves the high-water mark', () => {
    const c = chain(3);
    expect(accept(c[0]!)).toEqual({ kind: 'next' });
    expect(accept(c[2]!)).toEqual({ kind: 'ahead', skipped: [2] });
    expect(gaps(db)).toEqual([{ station: STATION, sequence: 2, refusedWith: null }]);
    expect(accept(c[1]!)).toEqual({ kind: 'late', successor: 3 });
    expect(gaps(db)).toEqual([]);
    expect(highWater(db, STATION)?.sequence).toBe(3);
  });

  it('a late bundle with another digest than its successor named is E_CHAIN, even validly shaped', () => {
    const c = chain(3);
    const forged = chain(3, '-forged');
    accept(c[0]!);
    accept(c[2]!);
    // Same sequence, its own previous right, but not the statement bundle 3 signed.
    const f = {
      ...forged[1]!,
      statement: {
        predicate: { ...forged[1]!.statement.predicate, previous: c[1]!.statement.predicate.previous },
      } as unknown as Statement,
    };
    const err = refused(() => check(f));
    expect(err).toMatchObject({ code: 'E_CHAIN', context: { check: 'chain', sequence: 2 } });
  });

  it('N-2 waits (E_SEQUENCE_GAP) until N-1 is accepted through N, then follows the chain back', () => {
    const c = chain(4);
    accept(c[0]!);
    accept(c[3]!);
    expect(refused(() => check(c[1]!))).toMatchObject({ code: 'E_SEQUENCE_GAP', context: { check: 'sequence' } });
    expect(accept(c[2]!)).toEqual({ kind: 'late', successor: 4 });
    expect(accept(c[1]!)).toEqual({ kind: 'late', successor: 3 });
    expect(gaps(db)).toEqual([]);
  });

  it('a second bundle with an accepted sequence, and the same bundle again, are E_REPLAY', () => {
    const c = chain(2);
    accept(c[0]!);
    accept(c[1]!);
    expect(refused(() => check(c[1]!))).toMatchObject({ code: 'E_REPLAY', context: { check: 'replay' } });
    expect(refused(() => check(chain(2, '-other')[1]!))).toMatchObject({ code: 'E_REPLAY' });
  });

  it('the next bundle must name the high-water bundle (E_CHAIN)', () => {
    const c = chain(2);
    accept(c[0]!);
    const other = chain(2, '-other');
    expect(refused(() => check(other[1]!))).toMatchObject({ code: 'E_CHAIN', context: { check: 'chain' } });
  });

  it('a late bundle that expired meanwhile is E_EXPIRED (the time floor still holds)', () => {
    const c = chain(3);
    accept(c[0]!);
    accept(c[2]!);
    const late = c[1]!;
    (late.statement.predicate as { expires: string }).expires = '2026-12-01T11:00:00Z';
    expect(refused(() => check(late))).toMatchObject({ code: 'E_EXPIRED', context: { check: 'expiry' } });
  });
});

describe('order: strict', () => {
  it('refuses a bundle above a gap with E_SEQUENCE_GAP, and accepts the chain in order', () => {
    const c = chain(3);
    accept(c[0]!, 'strict');
    const err = refused(() => check(c[2]!, 'strict'));
    expect(err).toMatchObject({ code: 'E_SEQUENCE_GAP', context: { check: 'sequence', sequence: 3 } });
    expect(err.message).toBe(
      `bundle 2 from station ${STATION} has not been imported; this is 3 and the site policy asks for strict order`,
    );
    expect(accept(c[1]!, 'strict')).toEqual({ kind: 'next' });
    expect(accept(c[2]!, 'strict')).toEqual({ kind: 'next' });
  });
});
