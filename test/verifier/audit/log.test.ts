/**
 * The log in process: homes from before the Merkle log are brought in on first append; checkpoints are signed after
 * import decisions, hourly when stale, and never left in the checkpoint file by a rolled-back transaction.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendAudit } from '../../../verifier/audit.js';
import {
  checkpointIfStale,
  latestCheckpoint,
  latestCheckpointFile,
  listCheckpoints,
} from '../../../verifier/audit/checkpoint.js';
import { verifyLog } from '../../../verifier/audit/verify.js';
import { openDb, setSetting, type Db } from '../../../verifier/db.js';
import { EcluseError } from '../../../sneakernet/errors.js';

let dir: string;
let db: Db;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-audit-log-'));
  db = openDb(dir);
  setSetting(db, 'site_id', 'unit');
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const tick = () => new Promise((r) => process.nextTick(r));

describe('audit log', () => {
  it('brings events written before the Merkle log into the tree, in order, on the first append', () => {
    const raw = db.prepare(
      "INSERT INTO audit (at, kind, outcome, message) VALUES ('2026-01-01T00:00:00Z', ?, 'info', ?)",
    );
    for (let i = 0; i < 5; i++) raw.run('old.event', `old ${i}`);
    appendAudit(db, { kind: 'new.event', outcome: 'info', message: 'new' });
    const leaves = db.prepare('SELECT idx, seq FROM audit_leaf ORDER BY idx').all() as Array<{
      idx: number;
      seq: number;
    }>;
    expect(leaves.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(verifyLog(db, dir).size).toBe(6);
  });

  it('signs a checkpoint with each import decision, in the same transaction, and writes the file after commit', async () => {
    appendAudit(db, { kind: 'check.signatures', outcome: 'pass', message: 'ok' });
    expect(listCheckpoints(db)).toHaveLength(0);
    db.transaction(() => appendAudit(db, { kind: 'import.accepted', outcome: 'accepted', message: 'in' }))();
    await tick();
    const c = latestCheckpoint(db);
    expect(c).toMatchObject({ size: 2, origin: 'ecluse/unit', reason: 'import.accepted' });
    expect(JSON.parse(fs.readFileSync(latestCheckpointFile(dir), 'utf8'))).toMatchObject({ size: 2, root: c?.root });
    expect(fs.statSync(path.join(dir, 'audit', 'audit-key.pem')).mode & 0o777).toBe(0o600);

    // a rolled-back import leaves neither a checkpoint row nor the file
    expect(() =>
      db.transaction(() => {
        appendAudit(db, { kind: 'import.refused', outcome: 'refused', message: 'no' });
        throw new Error('rollback');
      })(),
    ).toThrow('rollback');
    await tick();
    expect(listCheckpoints(db)).toHaveLength(1);
    expect(JSON.parse(fs.readFileSync(latestCheckpointFile(dir), 'utf8'))).toMatchObject({ size: 2 });
    expect(verifyLog(db, dir).size).toBe(2);
  });

  it('signs the hourly checkpoint only when the last one is older than an hour', () => {
    const t0 = new Date('2026-11-21T10:00:00Z');
    expect(checkpointIfStale(db, dir, 3_600_000, t0)).toBe(true);
    expect(checkpointIfStale(db, dir, 3_600_000, new Date(t0.getTime() + 30 * 60_000))).toBe(false);
    expect(checkpointIfStale(db, dir, 3_600_000, new Date(t0.getTime() + 61 * 60_000))).toBe(true);
    expect(listCheckpoints(db).map((c) => c.reason)).toEqual(['hourly', 'hourly']);
  });

  it('reports an event inserted into the history', () => {
    for (let i = 0; i < 4; i++) appendAudit(db, { kind: 'k', outcome: 'info', message: `m${i}` });
    db.prepare('DELETE FROM audit WHERE seq = 2').run();
    db.prepare("INSERT INTO audit (seq, at, kind, outcome, message) VALUES (2, 'x', 'k', 'info', 'forged')").run();
    try {
      verifyLog(db, dir);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(EcluseError);
      expect((e as EcluseError).code).toBe('E_AUDIT_TAMPERED');
      expect((e as EcluseError).context.index).toBe(1);
    }
  });
});
