/**
 * The hand-over and the commit (docs/FORMAT.md 4.10): the installer's path unit (`*.deb`) must never see a package
 * for a bundle the site did not record as accepted, and a package the site accepted must never be silently lost.
 * Real CLI from dist/, real .debs, real SQLite, real files:
 *
 *   - the commit fails (a trigger RAISEs on the transaction's last insert, `import.accepted`): a watcher on the spool
 *     (inotify, and polling beside it) only ever sees dot-files, and none is left;
 *   - the placing after the commit fails (a folder stands where `<sha256>.deb` goes: rename gives EISDIR): the bundle
 *     stays accepted, `update.hand-over-failed` names the spool and the next step, the row stays pending, and the
 *     daemon's next start places the package (`update.hand-over-placed`);
 *   - the dot-files are gone before the retry: the next import audits `update.hand-over-lost` (re-send it) and the
 *     receipt no longer lists the package.
 */
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debSkip, tinyDeb, PACKAGE_POLICY } from '../../helpers/deb.js';
import { startDaemon, type DaemonProcess } from '../../helpers/media.js';
import {
  auditSince,
  ecluse,
  ecluseOk,
  lastAuditSeq,
  makeKeys,
  sha256,
  tmpDir,
  world,
  type Keys,
  type World,
} from '../../helpers/world.js';

interface Json {
  ok?: boolean;
  code?: string;
  handedOver: { version: string; sha256: string; deb: string; evidence: string } | null;
  handOverError: { code: string; message: string } | null;
}

/** The `handed_over_packages` row of `sha`, read as the test's own connection sees it. */
function handOverState(home: string, sha: string): string | undefined {
  const db = new Database(path.join(home, 'ecluse.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare('SELECT state FROM handed_over_packages WHERE sha256 = ?').get(sha) as { state: string } | undefined
    )?.state;
  } finally {
    db.close();
  }
}

/** Every name that appears in `dir` while it runs (inotify, and a 1 ms poll of the two names the unit could see). */
function watchNames(dir: string, sum: string): { seen: Set<string>; stop: () => void } {
  const seen = new Set<string>();
  const watcher = fs.watch(dir, (_event, name) => {
    if (name) seen.add(name.toString());
  });
  const poll = setInterval(() => {
    for (const n of [`${sum}.deb`, `${sum}.bundle`]) if (fs.existsSync(path.join(dir, n))) seen.add(n);
  }, 1);
  return {
    seen,
    stop: () => {
      clearInterval(poll);
      watcher.close();
    },
  };
}

describe.skipIf(debSkip !== null)('the hand-over is placed only after the commit, and never lost', () => {
  let keys: Keys;
  let root: string;
  const worlds: World[] = [];
  let daemon: DaemonProcess | null = null;
  beforeAll(async () => {
    root = tmpDir('ecluse-hand-over-commit-');
    keys = await makeKeys(path.join(root, 'keys'));
  });
  afterAll(async () => {
    await daemon?.stop();
    for (const w of worlds) w.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function newWorld(): Promise<{ w: World; spool: string }> {
    const w = await world({ keys });
    worlds.push(w);
    fs.writeFileSync(w.path('policy.yaml'), PACKAGE_POLICY);
    await ecluseOk(['policy', 'apply', w.path('policy.yaml'), '--json'], { home: w.inside });
    const spool = w.path('spool', 'incoming');
    fs.mkdirSync(spool, { recursive: true, mode: 0o730 });
    return { w, spool };
  }

  /** Adds an image and the package `version` outside and exports them to `media`; the package's sha256. */
  async function exportPackage(w: World, version: string, media: string, image: string): Promise<string> {
    await w.addImage('debian-13', image, 20_000);
    const deb = tinyDeb(w.root, { version });
    await ecluseOk(['relay', 'add', deb, '--type', 'ecluse-package', '--json'], { home: w.outside });
    await w.exportTo(w.path(media));
    return sha256(fs.readFileSync(deb));
  }

  const importTo = (w: World, media: string, spool: string) =>
    ecluse(['import', w.path(media), '--update-spool', spool, '--json'], { home: w.inside });

  it('a commit that fails never shows <sha256>.deb or <sha256>.bundle to the path unit', async () => {
    const { w, spool } = await newWorld();
    const sum = await exportPackage(w, '0.2.0', 'm1', '1');
    // The last insert of the accepting transaction fails, as a full disk or an I/O error at the commit would.
    const db = new Database(path.join(w.inside, 'ecluse.sqlite'));
    db.exec(`CREATE TRIGGER fail_commit BEFORE INSERT ON audit WHEN NEW.kind = 'import.accepted'
             BEGIN SELECT RAISE(ABORT, 'disk I/O error (test)'); END`);
    db.close();
    const seq = lastAuditSeq(w.inside);
    const watch = watchNames(spool, sum);
    let r;
    try {
      r = await importTo(w, 'm1', spool);
    } finally {
      watch.stop();
    }
    expect(r.code).not.toBe(0);
    expect((r.json as { ok: boolean }).ok).toBe(false);
    // The watcher did see the hand-over being prepared (so it was looking), and nothing but dot-files.
    expect(watch.seen).toContain(`.${sum}.deb`);
    expect([...watch.seen].filter((n) => !n.startsWith('.'))).toEqual([]);
    expect(fs.readdirSync(spool)).toEqual([]);
    // Nothing recorded: the row and update.handed-over went with the transaction.
    expect(handOverState(w.inside, sum)).toBeUndefined();
    const kinds = auditSince(w.inside, seq).map((e) => e.kind);
    expect(kinds).not.toContain('update.handed-over');
    expect(kinds).toContain('import.refused');

    // Once the disk is fine again, the same media goes through and the package lands.
    const fix = new Database(path.join(w.inside, 'ecluse.sqlite'));
    fix.exec('DROP TRIGGER fail_commit');
    fix.close();
    const ok = await importTo(w, 'm1', spool);
    expect(ok.code).toBe(0);
    expect((ok.json as Json).handOverError).toBeNull();
    expect(fs.readdirSync(spool).sort()).toEqual([`${sum}.bundle`, `${sum}.deb`]);
    expect(handOverState(w.inside, sum)).toBe('placed');
  });

  it('a placing that fails after the commit keeps the bundle accepted, is audited, and the daemon places it at start', async () => {
    const { w, spool } = await newWorld();
    const sum = await exportPackage(w, '0.3.0', 'm1', '1');
    // Something stands where the package goes: the rename after the commit fails (EISDIR), even as root.
    fs.mkdirSync(path.join(spool, `${sum}.deb`, 'in-the-way'), { recursive: true });
    const seq = lastAuditSeq(w.inside);
    const r = await importTo(w, 'm1', spool);
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    const j = r.json as Json;
    expect(j.handedOver).toMatchObject({ version: '0.3.0', sha256: sum, deb: path.join(spool, `${sum}.deb`) });
    expect(j.handOverError?.code).toBe('E_UPDATE');
    expect(j.handOverError?.message).toContain(`its files are kept in ${spool} as .${sum}.deb`);
    expect(j.handOverError?.message).toMatch(/restart ecluse-daemon or import any bundle: the placing is tried again/);
    // Accepted, recorded pending, the failure audited after the commit's events.
    const events = auditSince(w.inside, seq);
    expect(events.map((e) => e.kind).filter((k) => k.startsWith('update.') || k.startsWith('import.'))).toEqual([
      'update.handed-over',
      'import.accepted',
      'update.hand-over-failed',
    ]);
    const failed = events.find((e) => e.kind === 'update.hand-over-failed');
    expect(failed).toMatchObject({ outcome: 'fail', code: 'E_UPDATE' });
    expect(failed?.message).toContain(spool);
    expect(failed?.message).toContain('EISDIR');
    expect(handOverState(w.inside, sum)).toBe('pending');
    // The evidence went first; the package is still a dot-file, invisible to the path unit.
    expect(fs.existsSync(path.join(spool, `.${sum}.deb`))).toBe(true);
    expect(fs.existsSync(path.join(spool, `${sum}.bundle`))).toBe(true);
    expect(fs.statSync(path.join(spool, `${sum}.deb`)).isDirectory()).toBe(true);

    // The operator clears the spool; the daemon, at its next start, places the package (no --update-spool needed:
    // the row names where it goes).
    fs.rmSync(path.join(spool, `${sum}.deb`), { recursive: true });
    const mediaRoot = w.path('run-media');
    fs.mkdirSync(mediaRoot);
    const before = lastAuditSeq(w.inside);
    daemon = startDaemon(w, mediaRoot);
    // The placing is part of the start: a SIGTERM sent the moment it is read lands while the daemon still starts,
    // and must end in a clean stop after the start (exit 0), not in the default death by signal.
    expect(await daemon.stopWhen((e) => e.event === 'update.hand-over-placed')).toBe(0);
    const placed = daemon.events.find((e) => e.event === 'update.hand-over-placed');
    expect(placed).toMatchObject({ artifact: 'ecluse@0.3.0' });
    expect(daemon.events.map((e) => e.event).slice(-2)).toEqual(['daemon.started', 'daemon.stopped']);
    daemon = null;
    expect(fs.readdirSync(spool).sort()).toEqual([`${sum}.bundle`, `${sum}.deb`]);
    expect(fs.statSync(path.join(spool, `${sum}.deb`)).isFile()).toBe(true);
    expect(sha256(fs.readFileSync(path.join(spool, `${sum}.deb`)))).toBe(sum);
    expect(handOverState(w.inside, sum)).toBe('placed');
    const late = auditSince(w.inside, before).filter((e) => e.kind.startsWith('update.hand-over'));
    expect(late.map((e) => e.kind)).toEqual(['update.hand-over-placed']);
    expect(late[0]?.message).toMatch(/placed late/);

    // Placed once: a later import does not place or audit it again.
    const after = lastAuditSeq(w.inside);
    await ecluse(['import', w.path('m1'), '--update-spool', spool, '--json'], { home: w.inside });
    expect(auditSince(w.inside, after).filter((e) => e.kind.startsWith('update.hand-over'))).toEqual([]);
  });

  it('dot-files gone before the retry: the next import audits that the package must be re-sent', async () => {
    const { w, spool } = await newWorld();
    const sum = await exportPackage(w, '0.4.0', 'm1', '1');
    fs.mkdirSync(path.join(spool, `${sum}.deb`, 'in-the-way'), { recursive: true });
    const r = await importTo(w, 'm1', spool);
    expect(r.code).toBe(0);
    expect((r.json as Json).handOverError?.code).toBe('E_UPDATE');
    expect(handOverState(w.inside, sum)).toBe('pending');
    // Someone empties the spool before any retry.
    for (const n of fs.readdirSync(spool)) fs.rmSync(path.join(spool, n), { recursive: true });
    const seq = lastAuditSeq(w.inside);
    // Any import retries first (this one is a replay, refused: the retry runs all the same).
    const replay = await importTo(w, 'm1', spool);
    expect(replay.code).not.toBe(0);
    const lost = auditSince(w.inside, seq).filter((e) => e.kind.startsWith('update.hand-over'));
    expect(lost.map((e) => e.kind)).toEqual(['update.hand-over-lost']);
    expect(lost[0]).toMatchObject({ outcome: 'fail', code: 'E_UPDATE' });
    expect(lost[0]?.message).toMatch(/must be re-sent/);
    expect(lost[0]?.message).toContain(spool);
    expect(handOverState(w.inside, sum)).toBe('lost');
    expect(fs.readdirSync(spool)).toEqual([]);
    // Not delivered: the receipt leaves it out, so the export station sends it again.
    await ecluseOk(['receipt', 'export', '--to', w.path('back'), '--json'], { home: w.inside });
    const receiptDir = path.join(w.path('back'), 'ecluse', 'receipts');
    const [file] = fs.readdirSync(receiptDir).filter((n) => !n.startsWith('.'));
    const env = JSON.parse(fs.readFileSync(path.join(receiptDir, file as string), 'utf8')) as {
      dsseEnvelope: { payload: string };
    };
    const receipt = JSON.parse(Buffer.from(env.dsseEnvelope.payload, 'base64').toString('utf8')) as {
      inventory: { artifacts: Array<{ name: string }> };
    };
    expect(receipt.inventory.artifacts.map((a) => a.name)).not.toContain('ecluse');
  });
});
