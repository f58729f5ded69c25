/**
 * The data-diode inbox through the real daemon (`ecluse daemon --inbox DIR`, spawned CLI): a bundle copied in slowly
 * is not touched before its `.complete` marker, then imported and moved to `.done/`; a hostile delivery (a flipped
 * byte, a marker without its folder, a folder that is a link) is refused, moved to `.refused/`, audited, and the
 * daemon keeps running. No mounts: no root needed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDaemon, type DaemonProcess } from '../helpers/media.js';
import {
  auditSince,
  bundleOn,
  copyMedia,
  ecluse,
  flipByte,
  makeKeys,
  snapshot,
  tmpDir,
  world,
  type Keys,
  type World,
} from '../helpers/world.js';

const MiB = 1024 * 1024;

describe('ecluse daemon --inbox (data-diode inbox)', () => {
  let keys: Keys;
  let keysDir: string;
  const worlds: World[] = [];
  let daemon: DaemonProcess | null = null;

  beforeAll(async () => {
    keysDir = tmpDir('ecluse-inbox-keys-');
    keys = await makeKeys(keysDir);
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = null;
  });
  afterAll(() => {
    for (const w of worlds) w.cleanup();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  async function setup() {
    const w = await world({ keys });
    worlds.push(w);
    const mediaRoot = w.path('run-media');
    const inbox = w.path('inbox');
    fs.mkdirSync(mediaRoot);
    fs.mkdirSync(inbox);
    daemon = startDaemon(w, mediaRoot, { extra: ['--inbox', inbox] });
    await daemon.waitFor((e) => e.event === 'inbox.watching', 'the inbox watched');
    return { w, inbox, d: daemon };
  }

  /** Copies the bundle folder of `stick` into the inbox file by file, the volumes in 64 KiB pieces, slowly. */
  async function deliverSlowly(stick: string, inbox: string, pauseMs: number): Promise<string> {
    const b = bundleOn(stick);
    const to = path.join(inbox, 'ecluse', 'bundles', b.id);
    for (const e of fs.readdirSync(b.root, { recursive: true, withFileTypes: true })) {
      const rel = path.relative(b.root, path.join(e.parentPath, e.name));
      if (e.isDirectory()) {
        fs.mkdirSync(path.join(to, rel), { recursive: true });
        continue;
      }
      fs.mkdirSync(path.dirname(path.join(to, rel)), { recursive: true });
      const bytes = fs.readFileSync(path.join(b.root, rel));
      const fd = fs.openSync(path.join(to, rel), 'w');
      for (let at = 0; at < bytes.length || at === 0; at += 64 * 1024) {
        fs.writeSync(fd, bytes.subarray(at, at + 64 * 1024));
        await sleep(pauseMs);
        if (bytes.length === 0) break;
      }
      fs.closeSync(fd);
    }
    return b.id;
  }

  const complete = (inbox: string, id: string) =>
    fs.writeFileSync(path.join(inbox, 'ecluse', 'bundles', `${id}.complete`), '');

  it('imports a bundle copied in slowly only once its marker is written, then moves it to .done/', async () => {
    const { w, inbox, d } = await setup();
    const img = await w.addImage('debian', '13.2', 1 * MiB + 17);
    const stick = w.path('stick');
    await w.exportTo(stick);
    const id = await deliverSlowly(stick, inbox, 40);
    await sleep(1500);
    // Complete on disk, but no marker yet: nothing touched.
    expect(d.events.filter((e) => e.event.startsWith('inbox.') && e.event !== 'inbox.watching')).toEqual([]);
    expect(fs.existsSync(path.join(inbox, 'ecluse', 'bundles', id))).toBe(true);
    expect(snapshot(w.inside).images).toHaveLength(0);

    complete(inbox, id);
    const done = await d.waitFor(
      (e) => e.event === 'inbox.done' || e.event === 'inbox.refused',
      'the delivery handled',
    );
    expect(done).toMatchObject({ event: 'inbox.done', bundle: id });
    expect(d.events.find((e) => e.event === 'import.accepted')).toMatchObject({ bundle: id });
    const file = fs.readdirSync(path.join(w.inside, 'store', 'images'))[0] as string;
    expect(fs.readFileSync(path.join(w.inside, 'store', 'images', file)).equals(img.bytes)).toBe(true);

    expect(fs.readdirSync(path.join(inbox, 'ecluse', 'bundles'))).toEqual([]);
    expect(fs.readdirSync(path.join(inbox, '.work'))).toEqual([]);
    const moved = fs.readdirSync(path.join(inbox, '.done'));
    expect(moved).toHaveLength(1);
    expect(moved[0]).toMatch(new RegExp(`^\\d{8}T\\d{6}Z-${id}$`));
    expect(fs.existsSync(path.join(inbox, '.done', moved[0] as string, 'ecluse', 'bundles', id, 'volumes'))).toBe(true);
    const audit = auditSince(w.inside);
    expect(audit.find((a) => a.kind === 'inbox.done')).toMatchObject({ outcome: 'info', bundle_id: id });
    expect(audit.find((a) => a.kind === 'import.accepted')).toMatchObject({ bundle_id: id });
    expect(fs.statSync(path.join(inbox, '.work')).mode & 0o777).toBe(0o700);

    const status = (await ecluse(['status', '--json'], { home: w.inside })).json as {
      status: { state: string; last: { outcome: string } };
    };
    expect(status.status).toMatchObject({ state: 'idle', last: { outcome: 'accepted' } });
    expect(await d.stop()).toBe(0);
  });

  it('refuses hostile deliveries, moves them to .refused/, audits them, and keeps running', async () => {
    const { w, inbox, d } = await setup();
    await w.addImage('debian', '13.3', 600 * 1024);
    const stick = w.path('stick');
    await w.exportTo(stick);
    const spoiled = copyMedia(stick, w.path('spoiled'));
    flipByte(bundleOn(spoiled).volume(1), 4096);
    const id = await deliverSlowly(spoiled, inbox, 0);
    complete(inbox, id);
    const refused = await d.waitFor((e) => e.event === 'inbox.refused', 'the flipped delivery refused');
    expect(refused).toMatchObject({ bundle: id, level: 'warning', code: 'E_DIGEST' });
    expect(d.events.find((e) => e.event === 'import.refused')).toMatchObject({ bundle: id });
    expect(snapshot(w.inside).images).toHaveLength(0);
    const gone = fs.readdirSync(path.join(inbox, '.refused'));
    expect(gone).toHaveLength(1);
    expect(gone[0]).toMatch(new RegExp(`-${id}$`));

    // A marker without its folder, and a bundle folder that is a link to elsewhere: refused without reading.
    const ghost = '11111111-2222-4333-8444-555555555555';
    complete(inbox, ghost);
    const ghostRefused = await d.waitFor((e) => e.event === 'inbox.refused' && e.message.includes(ghost), 'the ghost');
    expect(ghostRefused).toMatchObject({ code: 'E_NO_BUNDLE' });
    const elsewhere = w.path('elsewhere');
    fs.mkdirSync(elsewhere);
    const linked = '66666666-7777-4888-8999-aaaaaaaaaaaa';
    fs.symlinkSync(elsewhere, path.join(inbox, 'ecluse', 'bundles', linked));
    complete(inbox, linked);
    const linkRefused = await d.waitFor((e) => e.event === 'inbox.refused' && e.message.includes(linked), 'the link');
    expect(linkRefused.message).toContain('links are not followed');
    const audit = auditSince(w.inside).filter((a) => a.kind === 'inbox.refused');
    expect(audit.map((a) => a.code)).toEqual(['E_DIGEST', 'E_NO_BUNDLE', 'E_NO_BUNDLE']);
    expect(fs.readdirSync(path.join(inbox, '.refused'))).toHaveLength(3);

    // Still running: the same bundle delivered again, intact, is imported.
    const goodId = await deliverSlowly(stick, inbox, 0);
    expect(goodId).toBe(id);
    complete(inbox, goodId);
    const done = await d.waitFor((e) => e.event === 'inbox.done', 'the good delivery');
    expect(done).toMatchObject({ bundle: goodId });
    expect(d.child.exitCode).toBeNull();
  });

  it('refuses to start on an inbox that does not exist, saying what to do (exit 3)', async () => {
    const w = await world({ keys });
    worlds.push(w);
    const r = await ecluse(['daemon', '--media-root', w.path('m'), '--inbox', w.path('missing'), '--json'], {
      home: w.inside,
    });
    expect(r.code).toBe(3);
    expect(r.json).toMatchObject({ ok: false, code: 'E_NOT_FOUND' });
    expect(r.stderr).toMatch(/E_NOT_FOUND: the inbox .* does not exist: create it/);
  });
});
