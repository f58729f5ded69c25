/**
 * The import daemon against real filesystems: images made with mkfs.ext4, mkfs.vfat and xorriso, loop-mounted
 * ro,nosuid,nodev,noexec under a temporary media root while the real `ecluse daemon` runs (spawned CLI), then
 * unmounted. vfat and iso9660 are mounted by the kernel when it has them, else by the FUSE drivers fusefat and
 * fuseiso (the daemon then runs with --allow-fuse-drivers); they are skipped only when neither can, saying why.
 * Needs root (mount, losetup): CI runs as root; otherwise the suite is skipped and says why.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FUSE_DRIVER,
  kindSkip,
  makeImage,
  mountMethod,
  MediaBench,
  mediaSkipReason,
  startDaemon as start,
  type DaemonProcess,
  type Kind,
} from '../helpers/media.js';
import {
  auditSince,
  bundleOn,
  copyMedia,
  ecluseOk,
  flipByte,
  makeKeys,
  snapshot,
  tmpDir,
  world,
  type Keys,
  type World,
} from '../helpers/world.js';

const MiB = 1024 * 1024;

if (mediaSkipReason) console.warn(`daemon e2e tests skipped: ${mediaSkipReason}`);

describe.skipIf(mediaSkipReason !== null)('ecluse daemon with real mounted media', () => {
  let keys: Keys;
  let keysDir: string;
  const worlds: World[] = [];
  const bench = new MediaBench();
  let daemon: DaemonProcess | null = null;

  beforeAll(async () => {
    keysDir = tmpDir('ecluse-daemon-keys-');
    keys = await makeKeys(keysDir);
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = null;
    await bench.cleanup();
  });
  afterAll(() => {
    for (const w of worlds) w.cleanup();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  async function setup() {
    const w = await world({ keys });
    worlds.push(w);
    const mediaRoot = w.path('run-media');
    fs.mkdirSync(mediaRoot);
    return { w, mediaRoot };
  }

  function startDaemon(w: World, mediaRoot: string, extra: string[] = []): DaemonProcess {
    daemon = start(w, mediaRoot, { extra });
    return daemon;
  }

  const insert = (w: World, kind: Kind, folder: string, mediaRoot: string, name: string, options?: string) =>
    bench.insert(w, kind, folder, mediaRoot, name, options ? { options } : {});
  const pull = (mp: string) => bench.pull(mp);

  const status = async (w: World) =>
    (await ecluseOk(['status', '--json'], { home: w.inside })).json as {
      ok: true;
      status: {
        state: string;
        message: string;
        waiting: Array<{ missing: string[]; have: string[] }>;
        last: { outcome: string; code: string | null } | null;
      };
    };

  for (const kind of ['ext4', 'vfat', 'iso9660'] as const) {
    const skip = kindSkip(kind);
    const method = mountMethod(kind);
    const via = method === 'fuse' ? ` (mounted by ${FUSE_DRIVER[kind]}: the kernel has no ${kind})` : '';
    if (skip) console.warn(`daemon e2e: the ${kind} test is skipped: ${skip}`);
    it.skipIf(skip !== null)(
      `imports a bundle from one ${kind} stick${via}${skip ? ` (skipped: ${skip})` : ''}`,
      async () => {
        const { w, mediaRoot } = await setup();
        const img = await w.addImage('debian', '13.1', 3 * MiB + 123);
        const folder = w.path('stick');
        const exported = (await w.exportTo(folder)).json as { bundle: { id: string } };
        const d = startDaemon(w, mediaRoot, method === 'fuse' ? ['--allow-fuse-drivers'] : []);
        await d.waitFor((e) => e.event === 'daemon.started', 'start');
        expect((await status(w)).status.state).toBe('idle');
        await insert(w, kind, folder, mediaRoot, `${kind}stick`);
        const done = await d.waitFor(
          (e) => e.event === 'import.accepted' || e.event === 'import.refused',
          'the import',
        );
        expect(done).toMatchObject({ event: 'import.accepted', bundle: exported.bundle.id });
        expect(d.events.find((e) => e.event === 'image.promoted')).toMatchObject({ artifact: 'debian@13.1' });
        await d.waitFor((e) => e.event === 'media.done', 'the medium done');
        const s = (await status(w)).status;
        expect(s.state).toBe('idle');
        expect(s.last).toMatchObject({ outcome: 'accepted', code: null });
        const snap = snapshot(w.inside);
        expect(snap.images).toHaveLength(1);
        const file = fs.readdirSync(path.join(w.inside, 'store', 'images'))[0] as string;
        expect(fs.readFileSync(path.join(w.inside, 'store', 'images', file)).equals(img.bytes)).toBe(true);
        const inserted = auditSince(w.inside).find((a) => a.kind === 'media.inserted');
        expect(inserted?.message).toContain(kind);
        const details = JSON.parse((inserted as unknown as { details: string }).details) as {
          identity: { fsLabel: string | null; fsUuid: string | null; kernelName: string | null };
        };
        expect(details.identity.kernelName).toMatch(/^loop\d+$/);
        if (kind === 'ext4') expect(details.identity.fsLabel).toBe(`${kind}stick`);
        expect(await d.stop()).toBe(0);
        expect((await status(w)).status.state).toBe('stopped');
      },
    );
  }

  it('imports a bundle of three volumes on one stick from the stick itself, copying none aside', async () => {
    const { w, mediaRoot } = await setup();
    const img = await w.addImage('split', '1.0', 5 * MiB);
    const stick = w.path('one-stick');
    const r = (await w.exportTo(stick, ['--media-size', '2M'])).json as {
      bundle: { id: string; media: Array<{ volumes: string[] }> };
    };
    expect(r.bundle.media.map((m) => m.volumes)).toEqual([['vol-0001.tar', 'vol-0002.tar', 'vol-0003.tar']]);
    const d = startDaemon(w, mediaRoot);
    await d.waitFor((e) => e.event === 'daemon.started', 'start');
    await insert(w, 'ext4', stick, mediaRoot, 'onestick');
    const done = await d.waitFor((e) => e.event === 'import.accepted' || e.event === 'import.refused', 'the import');
    expect(done).toMatchObject({ event: 'import.accepted', bundle: r.bundle.id });
    // Read from the medium: no volume was copied into an assembly first.
    expect(d.events.filter((e) => e.event === 'volume.collected' || e.event === 'bundle.waiting')).toEqual([]);
    expect(auditSince(w.inside).filter((a) => a.kind === 'volume.collected')).toEqual([]);
    const file = fs.readdirSync(path.join(w.inside, 'store', 'images'))[0] as string;
    expect(fs.readFileSync(path.join(w.inside, 'store', 'images', file)).equals(img.bytes)).toBe(true);
  });

  it('assembles a bundle over three sticks inserted out of order', async () => {
    const { w, mediaRoot } = await setup();
    const img = await w.addImage('big', '2.0', 5 * MiB);
    const sticks = [w.path('s1'), w.path('s2'), w.path('s3')];
    const r = (
      await w.exportTo(sticks[0] as string, [
        '--to',
        sticks[1] as string,
        '--to',
        sticks[2] as string,
        '--media-size',
        '2M',
      ])
    ).json as { bundle: { id: string; media: Array<{ path: string; volumes: string[] }> } };
    expect(r.bundle.media.map((m) => m.volumes)).toEqual([['vol-0001.tar'], ['vol-0002.tar'], ['vol-0003.tar']]);
    const id = r.bundle.id;
    const d = startDaemon(w, mediaRoot);
    await d.waitFor((e) => e.event === 'daemon.started', 'start');
    await insert(w, 'ext4', sticks[2] as string, mediaRoot, 'third');
    const w1 = await d.waitFor((e) => e.event === 'bundle.waiting', 'waiting after the third stick');
    expect(w1.message).toMatch(/^insert volume 1 of 3 of bundle .* #1 /);
    expect((await status(w)).status).toMatchObject({ state: 'waiting', waiting: [{ have: ['vol-0003.tar'] }] });
    await insert(w, 'ext4', sticks[0] as string, mediaRoot, 'first');
    await d.waitFor((e) => e.event === 'bundle.waiting' && e.message.startsWith('insert volume 2 of 3'), 'volume 2');
    expect(snapshot(w.inside).images).toHaveLength(0);
    await insert(w, 'ext4', sticks[1] as string, mediaRoot, 'second');
    const done = await d.waitFor((e) => e.event === 'import.accepted' || e.event === 'import.refused', 'the import');
    expect(done).toMatchObject({ event: 'import.accepted', bundle: id });
    const file = fs.readdirSync(path.join(w.inside, 'store', 'images'))[0] as string;
    expect(fs.readFileSync(path.join(w.inside, 'store', 'images', file)).equals(img.bytes)).toBe(true);
    expect((await status(w)).status).toMatchObject({ state: 'idle', waiting: [], last: { outcome: 'accepted' } });
    expect(fs.readdirSync(path.join(w.inside, 'daemon', 'assembly'))).toEqual([]);
  });

  for (const kind of ['ext4', 'vfat'] as const) {
    const skip = kindSkip(kind);
    const method = mountMethod(kind);
    const via = method === 'fuse' ? ` by ${FUSE_DRIVER[kind]}` : '';
    it.skipIf(skip !== null)(
      `${kind === 'ext4' ? 'an' : 'a'} ${kind} stick${via} pulled mid-copy aborts cleanly; re-inserted, its volume is read again from the start${
        skip ? ` (skipped: ${skip})` : ''
      }`,
      async () => {
        const { w, mediaRoot } = await setup();
        const img = await w.addImage('big', '3.0', 5 * MiB);
        const sticks = [w.path('s1'), w.path('s2'), w.path('s3')];
        await w.exportTo(sticks[0] as string, [
          '--to',
          sticks[1] as string,
          '--to',
          sticks[2] as string,
          '--media-size',
          '2M',
        ]);
        const d = startDaemon(w, mediaRoot, [
          '--read-rate',
          '1M',
          ...(method === 'fuse' ? ['--allow-fuse-drivers'] : []),
        ]);
        await d.waitFor((e) => e.event === 'daemon.started', 'start');
        await insert(w, kind, sticks[0] as string, mediaRoot, 'first');
        await d.waitFor((e) => e.event === 'bundle.waiting', 'volume 1 kept');
        const second = await insert(w, kind, sticks[1] as string, mediaRoot, 'second');
        // Wait until the copy of volume 2 is under way, then pull the stick (lazy unmount: the open file still reads).
        const until = Date.now() + 20_000;
        for (;;) {
          const s = JSON.parse(fs.readFileSync(path.join(w.inside, 'daemon', 'status.json'), 'utf8')) as {
            progress: { volume: string; bytesDone: number } | null;
          };
          if (s.progress?.volume === 'vol-0002.tar' && s.progress.bytesDone > 0) break;
          if (Date.now() > until) throw new Error('the copy of volume 2 never started');
          await new Promise((r) => setTimeout(r, 20));
        }
        pull(second);
        const interrupted = await d.waitFor((e) => e.event === 'import.interrupted', 'the interruption');
        expect(interrupted).toMatchObject({ code: 'E_MEDIA_REMOVED' });
        await new Promise((r) => setTimeout(r, 300));
        const s = (await status(w)).status;
        expect(s).toMatchObject({ waiting: [{ have: ['vol-0001.tar'], missing: ['vol-0002.tar', 'vol-0003.tar'] }] });
        expect(s.last).toMatchObject({ outcome: 'interrupted', code: 'E_MEDIA_REMOVED' });
        expect(snapshot(w.inside).images).toHaveLength(0);
        const assembly = fs.readdirSync(path.join(w.inside, 'daemon', 'assembly'))[0] as string;
        expect(
          fs.readdirSync(path.join(w.inside, 'daemon', 'assembly', assembly)).filter((n) => n.startsWith('.part')),
        ).toEqual([]);
        // Re-inserted (a new mount of the same image), then the last stick.
        const count = d.events.filter((e) => e.event === 'volume.collected').length;
        await insert(w, kind, sticks[1] as string, mediaRoot, 'second');
        await d.waitFor(
          () => d.events.filter((e) => e.event === 'volume.collected').length > count,
          'volume 2 again',
          30_000,
        );
        await insert(w, kind, sticks[2] as string, mediaRoot, 'third');
        const done = await d.waitFor(
          (e) => e.event === 'import.accepted' || e.event === 'import.refused',
          'the import',
          30_000,
        );
        expect(done.event).toBe('import.accepted');
        const file = fs.readdirSync(path.join(w.inside, 'store', 'images'))[0] as string;
        expect(fs.readFileSync(path.join(w.inside, 'store', 'images', file)).equals(img.bytes)).toBe(true);
        expect(auditSince(w.inside).filter((a) => a.kind === 'import.interrupted')).toHaveLength(1);
        expect(auditSince(w.inside).filter((a) => a.kind === 'import.refused')).toHaveLength(0);
      },
    );
  }

  it('two sticks inserted together, the later bundle first: imported in sequence order', async () => {
    const { w, mediaRoot } = await setup();
    await w.addImage('img', '1.0', 200 * 1024);
    const one = w.path('one');
    const b1 = ((await w.exportTo(one)).json as { bundle: { id: string } }).bundle.id;
    await w.addImage('img', '2.0', 200 * 1024);
    const two = w.path('two');
    const b2 = ((await w.exportTo(two)).json as { bundle: { id: string } }).bundle.id;
    await makeImage('ext4', one, w.path('one.img'), 'one');
    await makeImage('ext4', two, w.path('two.img'), 'two');
    await insert(w, 'ext4', two, mediaRoot, 'two');
    await insert(w, 'ext4', one, mediaRoot, 'one');
    const d = startDaemon(w, mediaRoot);
    await d.waitFor((e) => e.event === 'import.accepted' && e.bundle === b2, 'the second bundle');
    const outcomes = d.events.filter((e) => e.event.startsWith('import.')).map((e) => `${e.event}:${e.bundle}`);
    expect(outcomes.filter((o) => !o.startsWith('import.started'))).toEqual([
      `import.accepted:${b1}`,
      `import.accepted:${b2}`,
    ]);
  });

  it('refuses a writable mount, and a stick mounted without noexec, and says why', async () => {
    const { w, mediaRoot } = await setup();
    await w.addImage('img', '1.0', 300 * 1024);
    const folder = w.path('stick');
    await w.exportTo(folder);
    const d = startDaemon(w, mediaRoot);
    await d.waitFor((e) => e.event === 'daemon.started', 'start');
    await insert(w, 'ext4', folder, mediaRoot, 'rwstick', 'rw,nosuid,nodev,noexec');
    const refused = await d.waitFor((e) => e.event === 'media.refused', 'the refusal');
    expect(refused).toMatchObject({ code: 'E_MEDIA_REFUSED' });
    expect(refused.message).toContain('writable');
    await insert(w, 'ext4', folder, mediaRoot, 'execstick', 'ro,nosuid,nodev,noload');
    const second = await d.waitFor(
      (e) => e.event === 'media.refused' && e.message.includes('missing noexec'),
      'the second refusal',
    );
    expect(second.message).toContain('unsafe options');
    const audit = auditSince(w.inside).filter((a) => a.kind === 'media.refused');
    expect(audit.map((a) => a.code)).toEqual(['E_MEDIA_REFUSED', 'E_MEDIA_REFUSED']);
    expect(snapshot(w.inside).images).toHaveLength(0);
    expect((await status(w)).status.last).toMatchObject({ outcome: 'refused', code: 'E_MEDIA_REFUSED' });
  });

  it('refuses a hostile bundle and keeps running: the next good stick is imported', async () => {
    const { w, mediaRoot } = await setup();
    await w.addImage('img', '1.0', 1 * MiB);
    const good = w.path('good');
    await w.exportTo(good);
    const bad = copyMedia(good, w.path('bad'));
    flipByte(bundleOn(bad).volume(1), 512 + 4096);
    const d = startDaemon(w, mediaRoot);
    await d.waitFor((e) => e.event === 'daemon.started', 'start');
    await insert(w, 'ext4', bad, mediaRoot, 'hostile');
    const refused = await d.waitFor((e) => e.event === 'import.refused', 'the refusal');
    expect(refused).toMatchObject({ code: 'E_DIGEST' });
    await d.waitFor((e) => e.event === 'media.done', 'done with the hostile stick');
    expect(snapshot(w.inside)).toMatchObject({ images: [], staging: [] });
    await insert(w, 'ext4', good, mediaRoot, 'good');
    const done = await d.waitFor((e) => e.event === 'import.accepted', 'the good import');
    expect(done.bundle).toBe(bundleOn(good).id);
    expect(d.child.exitCode).toBeNull();
    const kinds = auditSince(w.inside).map((a) => `${a.kind}:${a.code ?? ''}`);
    expect(kinds).toContain('import.refused:E_DIGEST');
    expect(kinds).toContain('import.accepted:');
  });
});
