/**
 * The audit log through the real CLI: a good and a hostile import, then every way of tampering with the log directly
 * in SQLite, each caught by `ecluse audit verify` at the right index with a stable code; and exports carried out
 * and verified with `audit verify-export` across two exports with a consistency proof.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventLeaf, type AuditRecord } from '../../../verifier/audit/canonical.js';
import { bundleOn, copyMedia, ecluse, ecluseOk, flipByte, world, type World } from '../../helpers/world.js';

let w: World;
let n = 0;

function sql(home: string, f: (db: Database.Database) => void): void {
  const db = new Database(path.join(home, 'ecluse.sqlite'));
  try {
    f(db);
  } finally {
    db.close();
  }
}

function copyHome(): string {
  const to = w.path(`tampered-${++n}`);
  fs.cpSync(w.inside, to, { recursive: true });
  return to;
}

async function expectVerifyFails(home: string, code: string, index: number) {
  const r = await ecluse(['audit', 'verify', '--json'], { home });
  expect(r.code, r.stderr).toBe(1);
  expect(r.json).toMatchObject({ ok: false, code, index, check: 'audit-log' });
  expect(r.stderr.trimEnd().split('\n').pop()).toMatch(new RegExp(`^${code}: `));
  return r;
}

const count = (home: string) => {
  let c = 0;
  sql(home, (db) => (c = (db.prepare('SELECT count(*) AS c FROM audit').get() as { c: number }).c));
  return c;
};

beforeAll(async () => {
  w = await world();
  await w.addImage('img', '1.0.0', 64 * 1024);
  const good = w.path('good');
  await w.exportTo(good);
  const hostile = copyMedia(good, w.path('hostile'));
  const r1 = await w.importJson(good);
  expect(r1.code, r1.stderr).toBe(0);
  // the same bundle again, with a flipped byte: refused (replay or digest), audited, checkpointed
  flipByte(bundleOn(hostile).volume(1), 4096);
  const r2 = await w.importJson(hostile);
  expect(r2.code).toBe(1);
}, 120_000);
afterAll(() => w?.cleanup());

describe('ecluse audit verify', () => {
  it('passes on an untouched log, with a checkpoint signed after each import decision', async () => {
    const r = await ecluseOk(['audit', 'verify', '--json'], { home: w.inside });
    const j = r.json as { size: number; checkpoints: number; latest: { size: number; origin: string } };
    expect(j.size).toBe(count(w.inside));
    expect(j.checkpoints).toBeGreaterThanOrEqual(2);
    expect(j.latest).toMatchObject({ size: j.size, origin: `ecluse/${w.site}` });
    const key = fs.statSync(path.join(w.inside, 'audit', 'audit-key.pem'));
    expect(key.mode & 0o777).toBe(0o600);
  });

  it('an edited field: E_AUDIT_TAMPERED at its index', async () => {
    const home = copyHome();
    sql(home, (db) => db.prepare("UPDATE audit SET message = 'nothing to see' WHERE seq = 3").run());
    await expectVerifyFails(home, 'E_AUDIT_TAMPERED', 2);
  });

  it('an edited detail: E_AUDIT_TAMPERED at its index', async () => {
    const home = copyHome();
    const last = count(home);
    sql(home, (db) => db.prepare("UPDATE audit SET outcome = 'accepted' WHERE seq = ?").run(last));
    await expectVerifyFails(home, 'E_AUDIT_TAMPERED', last - 1);
  });

  it('a deleted event: E_AUDIT_MISSING at its index', async () => {
    const home = copyHome();
    sql(home, (db) => db.prepare('DELETE FROM audit WHERE seq = 4').run());
    await expectVerifyFails(home, 'E_AUDIT_MISSING', 3);
  });

  it('a deleted event and its leaf: E_AUDIT_MISSING at its index', async () => {
    const home = copyHome();
    sql(home, (db) => {
      db.prepare('DELETE FROM audit WHERE seq = 4').run();
      db.prepare('DELETE FROM audit_leaf WHERE seq = 4').run();
    });
    await expectVerifyFails(home, 'E_AUDIT_MISSING', 3);
  });

  it('two events swapped: E_AUDIT_ORDER at the first', async () => {
    const home = copyHome();
    sql(home, (db) => {
      const cols = 'at, kind, outcome, code, message, bundle_id, station, artifact, media, details';
      const get = db.prepare(`SELECT ${cols} FROM audit WHERE seq = ?`);
      const a = get.get(2) as Record<string, unknown>;
      const b = get.get(5) as Record<string, unknown>;
      const set = db.prepare(
        `UPDATE audit SET at = @at, kind = @kind, outcome = @outcome, code = @code, message = @message,
         bundle_id = @bundle_id, station = @station, artifact = @artifact, media = @media, details = @details WHERE seq = @seq`,
      );
      set.run({ ...b, seq: 2 });
      set.run({ ...a, seq: 5 });
    });
    const r = await expectVerifyFails(home, 'E_AUDIT_ORDER', 1);
    expect((r.json as { message: string }).message).toMatch(/logged at index 4/);
  });

  it('the last events truncated (with their leaves): E_AUDIT_MISSING at the new end', async () => {
    const home = copyHome();
    const last = count(home);
    sql(home, (db) => {
      db.prepare('DELETE FROM audit WHERE seq > ?').run(last - 3);
      db.prepare('DELETE FROM audit_leaf WHERE seq > ?').run(last - 3);
    });
    await expectVerifyFails(home, 'E_AUDIT_MISSING', last - 3);
  });

  it('truncated together with the checkpoints in the database: the checkpoint file still catches it', async () => {
    const home = copyHome();
    const last = count(home);
    sql(home, (db) => {
      db.prepare('DELETE FROM audit WHERE seq > ?').run(last - 2);
      db.prepare('DELETE FROM audit_leaf WHERE seq > ?').run(last - 2);
      db.prepare('DELETE FROM audit_checkpoint').run();
    });
    await expectVerifyFails(home, 'E_AUDIT_MISSING', last - 2);
  });

  it('an edit with its leaf recomputed: the signed checkpoint no longer matches (E_AUDIT_TAMPERED)', async () => {
    const home = copyHome();
    sql(home, (db) => {
      db.prepare("UPDATE audit SET message = 'rewritten history' WHERE seq = 3").run();
      const r = db.prepare('SELECT * FROM audit WHERE seq = 3').get() as AuditRecord;
      db.prepare('UPDATE audit_leaf SET leaf = ? WHERE seq = 3').run(eventLeaf(r));
    });
    // the checkpoint of site init covers event 0: the change is after it, before the first import's checkpoint
    const r = await expectVerifyFails(home, 'E_AUDIT_TAMPERED', 1);
    expect((r.json as { range: number[] }).range).toEqual([1, expect.any(Number)]);
    expect((r.json as { range: number[] }).range[1]).toBeGreaterThan(2);
  });

  it('a forged checkpoint (root changed): E_AUDIT_CHECKPOINT', async () => {
    const home = copyHome();
    // Change the root's first hex digit to another one (never a no-op, whatever the digit was).
    let before = '';
    let after = '';
    sql(home, (db) => {
      const root = () => (db.prepare('SELECT root FROM audit_checkpoint WHERE id = 1').get() as { root: string }).root;
      before = root();
      db.prepare(
        "UPDATE audit_checkpoint SET root = (CASE substr(root, 1, 1) WHEN 'f' THEN '0' ELSE 'f' END) || substr(root, 2) WHERE id = 1",
      ).run();
      after = root();
    });
    expect(before).toMatch(/^[0-9a-f]{64}$/);
    expect(after).toHaveLength(before.length);
    expect(after).not.toBe(before);
    expect(after.slice(1)).toBe(before.slice(1));
    const r = await ecluse(['audit', 'verify', '--json'], { home });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, code: 'E_AUDIT_CHECKPOINT' });
  });

  it('a checkpoint signed by another key: E_AUDIT_CHECKPOINT', async () => {
    const home = copyHome();
    const other = await w.newInside();
    await ecluseOk(['audit', 'checkpoint', '--json'], { home: other });
    sql(home, (db) => {
      let row: Record<string, unknown> = {};
      sql(
        other,
        (o) =>
          (row = o.prepare('SELECT * FROM audit_checkpoint ORDER BY id DESC LIMIT 1').get() as Record<string, unknown>),
      );
      db.prepare(
        'INSERT INTO audit_checkpoint (origin, size, root, time, key_id, signature, reason) VALUES (@origin, @size, @root, @time, @key_id, @signature, @reason)',
      ).run(row);
    });
    const r = await ecluse(['audit', 'verify', '--json'], { home });
    expect(r.json).toMatchObject({ ok: false, code: 'E_AUDIT_CHECKPOINT' });
  });
});

describe('ecluse audit export / verify-export', () => {
  it('two exports, the second proven an append-only extension of the first; forgeries refused', async () => {
    const keyFile = w.path('audit-key.pem');
    const k = await ecluseOk(['audit', 'key', '--json'], { home: w.inside });
    fs.writeFileSync(keyFile, (k.json as { publicKey: string }).publicKey);
    const e1 = w.path('export-1');
    const r1 = await ecluseOk(['audit', 'export', '--to', e1, '--json'], { home: w.inside });
    expect(r1.json).toMatchObject({ ok: true, firstIndex: 0, consistencyFrom: null });
    await ecluseOk(['audit', 'verify-export', e1, '--key', keyFile, '--json']);

    // more happens inside: another import, then the second export
    await w.addImage('img', '1.1.0', 32 * 1024);
    const media2 = w.path('media-2');
    await w.exportTo(media2);
    expect((await w.importJson(media2)).code).toBe(0);
    const e2 = w.path('export-2');
    const r2 = await ecluseOk(['audit', 'export', '--to', e2, '--json'], { home: w.inside });
    const first = JSON.parse(fs.readFileSync(path.join(e1, 'checkpoint.json'), 'utf8')) as { size: number };
    expect(r2.json).toMatchObject({ consistencyFrom: { size: first.size } });
    expect(fs.existsSync(path.join(e2, 'consistency.json'))).toBe(true);
    const v = await ecluseOk([
      'audit',
      'verify-export',
      e2,
      '--key',
      keyFile,
      '--previous',
      path.join(e1, 'checkpoint.json'),
      '--json',
    ]);
    expect(v.json).toMatchObject({ ok: true, consistentWith: { size: first.size } });

    // an incremental export (--since) verifies from the signed prefix
    const e3 = w.path('export-3');
    await ecluseOk(['audit', 'export', '--to', e3, '--since', path.join(e2, 'checkpoint.json'), '--json'], {
      home: w.inside,
    });
    await ecluseOk([
      'audit',
      'verify-export',
      e3,
      '--key',
      keyFile,
      '--previous',
      path.join(e2, 'checkpoint.json'),
      '--json',
    ]);
    const noPrev = await ecluse(['audit', 'verify-export', e3, '--key', keyFile, '--json']);
    // without --previous, the proof's own signed "from" checkpoint is used
    expect(noPrev.code).toBe(0);

    // a forged checkpoint in the export
    const forged = w.path('export-forged');
    fs.cpSync(e2, forged, { recursive: true });
    const cp = JSON.parse(fs.readFileSync(path.join(forged, 'checkpoint.json'), 'utf8')) as { size: number };
    fs.writeFileSync(path.join(forged, 'checkpoint.json'), JSON.stringify({ ...cp, size: cp.size + 1 }));
    const f1 = await ecluse(['audit', 'verify-export', forged, '--key', keyFile, '--json']);
    expect(f1.code).toBe(1);
    expect(f1.json).toMatchObject({ ok: false, code: 'E_AUDIT_CHECKPOINT' });

    // an edited event in the export
    const edited = w.path('export-edited');
    fs.cpSync(e2, edited, { recursive: true });
    const ev = path.join(edited, 'events.jsonl');
    fs.writeFileSync(ev, fs.readFileSync(ev, 'utf8').replace('"outcome":"refused"', '"outcome":"accepted"'));
    const f2 = await ecluse(['audit', 'verify-export', edited, '--key', keyFile, '--json']);
    expect(f2.json).toMatchObject({ ok: false, code: 'E_AUDIT_TAMPERED' });

    // a broken consistency proof
    const badProof = w.path('export-bad-proof');
    fs.cpSync(e2, badProof, { recursive: true });
    const cf = path.join(badProof, 'consistency.json');
    const c = JSON.parse(fs.readFileSync(cf, 'utf8')) as { proof: string[] };
    c.proof[0] = '0'.repeat(64);
    fs.writeFileSync(cf, JSON.stringify(c));
    const f3 = await ecluse([
      'audit',
      'verify-export',
      badProof,
      '--key',
      keyFile,
      '--previous',
      path.join(e1, 'checkpoint.json'),
      '--json',
    ]);
    expect(f3.json).toMatchObject({ ok: false, code: 'E_AUDIT_CONSISTENCY' });

    // the wrong key
    const other = await w.newInside();
    const ok = await ecluseOk(['audit', 'key', '--json'], { home: other });
    fs.writeFileSync(w.path('other.pem'), (ok.json as { publicKey: string }).publicKey);
    const f4 = await ecluse(['audit', 'verify-export', e2, '--key', w.path('other.pem'), '--json']);
    expect(f4.json).toMatchObject({ ok: false, code: 'E_AUDIT_CHECKPOINT' });
  });
});
