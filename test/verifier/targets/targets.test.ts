/**
 * The targets tables behind their modules (verifier/targets/targets.ts, push-records.ts): rows round-trip, and a row
 * the schema does not describe (edited by hand, written by a broken version) is E_STORE naming the table and what to
 * do, never an unchecked cast that fails later.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EcluseError } from '../../../sneakernet/errors.js';
import { openDb, type Db } from '../../../verifier/db.js';
import { recordPush } from '../../../verifier/targets/push-records.js';
import { addTarget, listTargets, pushRecords, removeTarget } from '../../../verifier/targets/targets.js';

let dir: string;
let db: Db;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-targets-'));
  db = openDb(dir);
});
afterAll(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function refusal(fn: () => unknown): EcluseError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(EcluseError);
  return caught as EcluseError;
}

describe('glance_targets', () => {
  it('round-trips a target, options defaulted when an older row stored none', () => {
    const auth = {
      type: 'application_credential' as const,
      authUrl: 'http://127.0.0.1:5000/v3',
      id: 'abc',
      secret: 's3cret',
    };
    const added = addTarget(db, {
      name: 'cloud',
      url: 'http://127.0.0.1:9292/',
      auth,
      options: { visibility: 'private' },
    });
    expect(listTargets(db)).toEqual([added]);
    expect(added.url).toBe('http://127.0.0.1:9292');
    db.prepare("UPDATE glance_targets SET options = '{}' WHERE name = 'cloud'").run();
    expect(listTargets(db)[0]?.options).toEqual({ visibility: 'keep', signatures: 'at-create' });
  });

  it('E_STORE for a row whose auth is not JSON or not a known kind, naming the target and the way out', () => {
    db.prepare('UPDATE glance_targets SET auth = \'{"type":"kerberos"}\' WHERE name = \'cloud\'').run();
    const err = refusal(() => listTargets(db));
    expect(err.code).toBe('E_STORE');
    expect(err.context).toMatchObject({ check: 'catalog-row', table: 'glance_targets' });
    expect(err.message).toMatch(
      /^the stored settings of target cloud are malformed \(auth\.type: .*\): remove it with "ecluse target remove cloud" and add it again$/,
    );
    db.prepare("UPDATE glance_targets SET auth = 'not json' WHERE name = 'cloud'").run();
    expect(refusal(() => listTargets(db)).message).toMatch(/\(auth: not JSON\)/);
    expect(removeTarget(db, 'cloud')).toBe(true);
    expect(listTargets(db)).toEqual([]);
  });
});

describe('target_pushes', () => {
  it('round-trips the state of a push, one row per target and image', () => {
    recordPush(db, {
      target: 't',
      imageId: 'i1',
      remoteId: null,
      status: 'pending',
      message: 'attempt 1',
      attempts: 1,
    });
    recordPush(db, { target: 't', imageId: 'i1', remoteId: 'r1', status: 'active', message: 'pushed', attempts: 1 });
    expect(pushRecords(db, 't')).toEqual([
      {
        target: 't',
        image_id: 'i1',
        remote_id: 'r1',
        status: 'active',
        message: 'pushed',
        attempts: 1,
        updated_at: expect.any(String),
      },
    ]);
  });

  it('E_STORE for a row with a status the code never writes', () => {
    db.prepare("UPDATE target_pushes SET status = 'done' WHERE target = 't'").run();
    const err = refusal(() => pushRecords(db));
    expect(err).toMatchObject({ code: 'E_STORE', context: { check: 'catalog-row', table: 'target_pushes' } });
    expect(err.message).toMatch(/^a row of target_pushes is malformed \(status: .*\): push the image again/);
  });
});
