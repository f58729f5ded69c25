/**
 * The self-update installer's results into the audit chain (verifier/update-results.ts): a temporary results folder
 * written as the installer writes it (`.<name>.tmp` renamed into place), a real station database. Each result becomes
 * exactly one audit event, across new connections (a restarted daemon); what is not a result is audited as such and
 * nothing in it is trusted. Then the real daemon (CLI from dist/) with `--update-results`: it audits at start and when
 * a result appears, and not again after a restart.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express from 'express';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { openDb, setSetting, type Db } from '../../verifier/db.js';
import { verifyLog } from '../../verifier/audit/verify.js';
import { auditWebRouter } from '../../verifier/web/router.js';
import { MAX_RESULT_BYTES, parseResult, UpdateResults, type UpdateResult } from '../../verifier/update-results.js';
import { startDaemon, type DaemonProcess } from '../helpers/media.js';
import { auditSince, ecluseOk, makeKeys, tmpDir, world, type Keys, type World } from '../helpers/world.js';

const SHA = 'a'.repeat(64);
const SHA2 = 'b'.repeat(64);
const BUNDLE = '0b6f4a8e-2c1d-4e5f-9a7b-1c2d3e4f5a6b';

interface AuditRow {
  seq: number;
  kind: string;
  outcome: string;
  code: string | null;
  message: string;
  bundle_id: string | null;
  artifact: string | null;
  details: string;
}

function result(over: Partial<UpdateResult> = {}): UpdateResult {
  return {
    event: 'update.installed',
    sha256: SHA,
    version: '0.2.0+next1',
    previous: '0.2.0',
    bundle: BUNDLE,
    code: null,
    message: 'ecluse 0.2.0+next1 installed; the daemon reported READY',
    time: '2026-12-02T12:00:00Z',
    ...over,
  };
}

/** The file name the installer gives a result. */
function nameOf(r: Pick<UpdateResult, 'event' | 'sha256'>, stamp = '20261202T120000.000000001Z'): string {
  return `${stamp}-${r.sha256}-${r.event}.json`;
}

/** Writes as the installer does: a dot-file, then renamed into place. */
function writeResult(dir: string, name: string, text: string): void {
  fs.writeFileSync(path.join(dir, `.${name}.tmp`), text);
  fs.renameSync(path.join(dir, `.${name}.tmp`), path.join(dir, name));
}

describe('the installer results audited once each', () => {
  let home: string;
  let results: string;
  let db: Db;

  beforeEach(() => {
    home = tmpDir('ecluse-update-results-');
    results = path.join(home, 'results');
    fs.mkdirSync(results);
    db = openDb(home);
    setSetting(db, 'site_id', 'unit');
  });
  afterEach(() => {
    db.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const audit = (d: Db = db) =>
    d.prepare("SELECT * FROM audit WHERE kind LIKE 'update.%' ORDER BY seq").all() as AuditRow[];

  it('appends each outcome as its own event, with its version, bundle and code; oldest name first', () => {
    const installed = result();
    const failed = result({
      event: 'update.failed',
      sha256: SHA2,
      version: '0.2.0+next2',
      previous: '0.2.0+next1',
      code: 'E_UPDATE',
      message: 'ecluse 0.2.0+next2 did not come up; reinstalling 0.2.0+next1',
    });
    const rolledBack = result({
      event: 'update.rolled-back',
      sha256: SHA2,
      version: '0.2.0+next2',
      previous: '0.2.0+next1',
      code: 'E_UPDATE',
      message: 'ecluse 0.2.0+next1 reinstalled after the failed update to 0.2.0+next2',
    });
    const refused = result({
      event: 'update.refused',
      sha256: 'c'.repeat(64),
      version: null,
      previous: '0.2.0+next1',
      bundle: null,
      code: 'E_SIGNATURE',
      message: 'E_SIGNATURE: the evidence does not verify against the pinned anchors',
    });
    writeResult(results, nameOf(rolledBack, '20261202T120003.000000000Z'), JSON.stringify(rolledBack));
    writeResult(results, nameOf(installed, '20261202T120000.000000000Z'), JSON.stringify(installed));
    writeResult(results, nameOf(failed, '20261202T120002.500000000Z'), JSON.stringify(failed));
    writeResult(results, nameOf(refused, '20261202T120004.000000000Z'), JSON.stringify(refused));
    // A result still being written is not looked at.
    fs.writeFileSync(path.join(results, `.${nameOf(result(), '20261202T120009Z')}.tmp`), '{"event":');

    const u = new UpdateResults({ dir: results, db });
    expect(u.scan()).toBe(4);
    const rows = audit();
    expect(rows.map((r) => [r.kind, r.outcome, r.code])).toEqual([
      ['update.installed', 'accepted', null],
      ['update.failed', 'fail', 'E_UPDATE'],
      ['update.rolled-back', 'info', 'E_UPDATE'],
      ['update.refused', 'refused', 'E_SIGNATURE'],
    ]);
    expect(rows[0]).toMatchObject({
      message: installed.message,
      bundle_id: BUNDLE,
      artifact: 'ecluse@0.2.0+next1',
    });
    expect(JSON.parse(rows[0]?.details as string)).toEqual({
      result: nameOf(installed, '20261202T120000.000000000Z'),
      sha256: SHA,
      version: '0.2.0+next1',
      previous: '0.2.0',
      time: '2026-12-02T12:00:00Z',
    });
    expect(rows[3]).toMatchObject({ artifact: null, bundle_id: null });
    // A checkpoint is signed after each (a change of the station's own code is never left unsigned), and the chain
    // verifies: the events are leaves of the Merkle log like any other.
    const checkpoints = db.prepare('SELECT reason, size FROM audit_checkpoint ORDER BY id').all();
    expect(checkpoints).toEqual(rows.map((r, i) => ({ reason: r.kind, size: i + 1 })));
    expect(() => verifyLog(db, home)).not.toThrow();
  });

  it('never twice: a second scan, a new connection (a restarted daemon), a poll with nothing new', () => {
    writeResult(results, nameOf(result()), JSON.stringify(result()));
    expect(new UpdateResults({ dir: results, db }).scan()).toBe(1);
    expect(new UpdateResults({ dir: results, db }).scan()).toBe(0);
    db.close();
    db = openDb(home);
    const u = new UpdateResults({ dir: results, db });
    expect(u.poll()).toBe(0);
    expect(audit()).toHaveLength(1);
    // A new result is picked up by the next poll (the folder changed), and only it.
    const next = result({ sha256: SHA2, version: '0.2.0+next3', previous: '0.2.0+next1' });
    writeResult(results, nameOf(next, '20261202T130000Z'), JSON.stringify(next));
    expect(u.poll()).toBe(1);
    expect(u.poll()).toBe(0);
    expect(audit().map((r) => r.artifact)).toEqual(['ecluse@0.2.0+next1', 'ecluse@0.2.0+next3']);
    const recorded = db.prepare('SELECT name, seq FROM update_results ORDER BY seq').all() as Array<{ seq: number }>;
    expect(recorded.map((r) => r.seq)).toEqual(audit().map((r) => r.seq));
  });

  it('audits what is not a result as unreadable, trusting nothing in it, once', () => {
    const big = JSON.stringify(result({ message: 'x'.repeat(MAX_RESULT_BYTES) }));
    const cases: Array<[string, string]> = [
      [nameOf(result(), '20261202T120001Z'), 'not json {'],
      [nameOf(result(), '20261202T120002Z'), JSON.stringify({ ...result(), extra: 1 })],
      [nameOf(result(), '20261202T120003Z'), JSON.stringify(result({ code: 'E_NOT_A_CODE' }))],
      [nameOf(result(), '20261202T120004Z'), JSON.stringify(result({ event: 'update.refused', code: 'E_UPDATE' }))],
      [nameOf(result(), '20261202T120005Z'), JSON.stringify(result({ code: 'E_UPDATE' }))],
      [nameOf(result(), '20261202T120006Z'), JSON.stringify(result({ sha256: SHA2 }))],
      [nameOf(result(), '20261202T120007Z'), JSON.stringify(result({ version: '1.0; rm -rf /' }))],
      [nameOf(result(), '20261202T120008Z'), big],
      ['some-note.txt', 'hello'],
    ];
    for (const [name, text] of cases) writeResult(results, name, text);
    fs.symlinkSync('/etc/passwd', path.join(results, nameOf(result(), '20261202T120009Z')));
    const u = new UpdateResults({ dir: results, db });
    expect(u.scan()).toBe(cases.length + 1);
    const rows = audit();
    expect(rows).toHaveLength(cases.length + 1);
    for (const r of rows) {
      expect(r).toMatchObject({ kind: 'update.result-unreadable', outcome: 'fail', code: 'E_UPDATE', artifact: null });
      expect(r.message).toMatch(/is not readable as one \(.+\); nothing in it was trusted/);
    }
    const why = rows.map((r) => (JSON.parse(r.details) as { why: string }).why);
    expect(why).toEqual([
      'it is not JSON',
      expect.stringMatching(/^the object: /),
      'code: not a registered error code',
      'it says update.refused, its name says update.installed',
      'update.installed with a code',
      'its sha256 is not the one its name says',
      expect.stringMatching(/^version: /),
      `it is over ${MAX_RESULT_BYTES} bytes`,
      expect.stringMatching(/^it cannot be opened \(ELOOP\)$/),
      'its name is not <time>-<sha256>-<event>.json',
    ]);
    expect(new UpdateResults({ dir: results, db }).scan()).toBe(0);
  });

  it("shows them in the web view's timeline, filtered by update.*", async () => {
    const failed = result({ event: 'update.failed', code: 'E_UPDATE', message: 'ecluse 0.2.0+next1 did not come up' });
    writeResult(results, nameOf(result(), '20261202T120000Z'), JSON.stringify(result()));
    writeResult(results, nameOf(failed, '20261202T120001Z'), JSON.stringify(failed));
    new UpdateResults({ dir: results, db }).scan();
    const app = express();
    app.use('/audit', auditWebRouter({ db, checkpointEveryMs: 0 }));
    const server = http.createServer(app);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const page = await (await fetch(`${base}/audit/?kind=update.*`)).text();
      expect(page).toContain('<option selected>update.*</option>');
      expect(page.match(/<tr data-seq/g)).toHaveLength(2);
      expect(page).toContain('ecluse 0.2.0+next1 did not come up');
      expect(page).toContain('ecluse 0.2.0+next1 installed; the daemon reported READY');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('parses the installer event names and refuses an unknown event', () => {
    expect(parseResult(nameOf(result()), JSON.stringify(result()))).toEqual({ result: result() });
    const other = `20261202T120000Z-${SHA}-update.installing.json`;
    expect(parseResult(other, JSON.stringify({ ...result(), event: 'update.installing' }))).toMatchObject({
      why: expect.stringMatching(/^event: /),
    });
  });

  it('a missing folder is nothing to audit; an unreadable one is said once', () => {
    const said: string[] = [];
    const missing = new UpdateResults({ dir: path.join(home, 'nope'), db, onUnreadableFolder: (w) => said.push(w) });
    expect(missing.poll()).toBe(0);
    expect(said).toEqual([]);
    const notAFolder = path.join(home, 'file');
    fs.writeFileSync(notAFolder, '');
    const bad = new UpdateResults({ dir: notAFolder, db, onUnreadableFolder: (w) => said.push(w) });
    expect(bad.scan()).toBe(0);
    expect(bad.scan()).toBe(0);
    expect(said).toEqual([expect.stringMatching(/results folder .* cannot be read \(ENOTDIR\)/)]);
    expect(audit()).toEqual([]);
  });
});

describe('ecluse daemon --update-results', () => {
  let keys: Keys;
  let keysDir: string;
  let w: World;
  let d: DaemonProcess | null = null;

  beforeAll(async () => {
    keysDir = tmpDir('ecluse-update-keys-');
    keys = await makeKeys(keysDir, ['alice']);
    w = await world({ keys });
  });
  afterEach(async () => {
    await d?.stop();
    d = null;
  });
  afterAll(() => {
    w?.cleanup();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  it('audits the results there at start and as they appear, and not again after a restart', async () => {
    const results = w.path('update-results');
    const media = w.path('media');
    fs.mkdirSync(results);
    fs.mkdirSync(media);
    const updates = () => auditSince(w.inside).filter((a) => a.kind.startsWith('update.'));
    expect((await ecluseOk(['status', '--json'], { home: w.inside })).json).toMatchObject({ update: null });
    writeResult(results, nameOf(result(), '20261202T120000Z'), JSON.stringify(result()));
    d = startDaemon(w, media, { extra: ['--no-usb', '--update-results', results] });
    const started = await d.waitFor((e) => e.event === 'daemon.started', 'start');
    // Audited before READY: a rolled-back daemon records what happened before it serves anything.
    const first = d.events.findIndex((e) => e.event === 'update.audited');
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThan(d.events.indexOf(started));
    expect(updates().map((a) => a.kind)).toEqual(['update.installed']);

    const failed = result({
      event: 'update.failed',
      sha256: SHA2,
      version: '0.2.0+next2',
      previous: '0.2.0+next1',
      code: 'E_UPDATE',
      message: 'ecluse 0.2.0+next2 did not come up; reinstalling 0.2.0+next1',
    });
    writeResult(results, nameOf(failed, '20261202T120100Z'), JSON.stringify(failed));
    const seen = await d.waitFor((e) => e.event === 'update.audited' && e.code === 'E_UPDATE', 'the new result');
    expect(seen).toMatchObject({ level: 'warning', result: nameOf(failed, '20261202T120100Z') });
    expect(updates().map((a) => a.kind)).toEqual(['update.installed', 'update.failed']);
    // The operator's status says the last outcome.
    const status = await ecluseOk(['status', '--json'], { home: w.inside });
    expect((status.json as { update: unknown }).update).toEqual({
      event: 'update.failed',
      at: expect.stringMatching(/^\d{4}-/),
      version: '0.2.0+next2',
      previous: '0.2.0+next1',
      bundle: BUNDLE,
      code: 'E_UPDATE',
      message: failed.message,
    });
    const human = await ecluseOk(['status'], { home: w.inside });
    expect(human.stdout).toMatch(
      /^ {2}last self-update: update\.failed ecluse 0\.2\.0\+next2 at .*: ecluse 0\.2\.0\+next2 did not come up/m,
    );
    await d.stop();

    d = startDaemon(w, media, { extra: ['--no-usb', '--update-results', results] });
    await d.waitFor((e) => e.event === 'daemon.started', 'restart');
    await new Promise((r) => setTimeout(r, 500));
    expect(d.events.filter((e) => e.event === 'update.audited')).toEqual([]);
    expect(updates()).toHaveLength(2);
  }, 60_000);
});
