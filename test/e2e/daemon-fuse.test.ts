/**
 * Media served by FUSE drivers (kernels without vfat or iso9660): the daemon accepts fusefat and fuseiso only when
 * the station says so (--allow-fuse-drivers), refuses any other FUSE mount, and what fusefat cannot show right is
 * refused, not misread. Real images, real FUSE mounts on read-only loop devices (the drivers run as children of the
 * test): needs root and the Debian packages fusefat, fuseiso (mtools, exfat-fuse and exfatprogs for two of the
 * tests); each test says why when it is skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  copyTree,
  fuseSkip,
  kernelFs,
  MediaBench,
  mediaSkipReason,
  run,
  startDaemon,
  which,
  type DaemonProcess,
} from '../helpers/media.js';
import { auditSince, makeKeys, snapshot, tmpDir, world, type Keys, type World } from '../helpers/world.js';

const MiB = 1024 * 1024;
const both = mediaSkipReason ?? fuseSkip('vfat') ?? fuseSkip('iso9660');
const fat =
  mediaSkipReason ?? fuseSkip('vfat') ?? (which('mcopy') ? null : 'mcopy is missing (apt-get install mtools)');
const exfat =
  mediaSkipReason ??
  (!kernelFs.has('fuseblk') || !fs.existsSync('/dev/fuse')
    ? 'this kernel has no FUSE block devices (fuseblk)'
    : !which('mount.exfat-fuse') || !which('mkfs.exfat')
      ? 'exfat-fuse or mkfs.exfat is missing (apt-get install exfat-fuse exfatprogs)'
      : null);
for (const [what, why] of [
  ['FUSE driver tests', both],
  ['the mtools test', fat],
  ['the exfat-fuse test', exfat],
] as const) {
  if (why) console.warn(`daemon ${what} skipped: ${why}`);
}
const skipped = (why: string | null) => (why ? ` (skipped: ${why})` : '');

describe('ecluse daemon with media served by FUSE drivers', () => {
  let keys: Keys;
  let keysDir: string;
  const worlds: World[] = [];
  const bench = new MediaBench();
  const cleanups: Array<() => void> = [];
  let daemon: DaemonProcess | null = null;

  beforeAll(async () => {
    keysDir = tmpDir('ecluse-fuse-keys-');
    keys = await makeKeys(keysDir);
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = null;
    await bench.cleanup();
    for (const c of cleanups.splice(0).reverse()) c();
  });
  afterAll(() => {
    for (const w of worlds) w.cleanup();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  async function stick(size = 1 * MiB) {
    const w = await world({ keys });
    worlds.push(w);
    const mediaRoot = w.path('run-media');
    fs.mkdirSync(mediaRoot);
    await w.addImage('img', '1.0', size);
    const folder = w.path('stick');
    const id = ((await w.exportTo(folder)).json as { bundle: { id: string } }).bundle.id;
    return { w, mediaRoot, folder, id };
  }

  const start = (w: World, mediaRoot: string, allow: boolean) => {
    daemon = startDaemon(w, mediaRoot, { extra: allow ? ['--allow-fuse-drivers'] : [] });
    return daemon;
  };

  it.skipIf(both !== null)(
    `refuses fusefat and fuseiso media unless allowed, and an unknown FUSE type even then${skipped(both)}`,
    async () => {
      const { w, mediaRoot, folder, id } = await stick();
      let d = start(w, mediaRoot, false);
      await d.waitFor((e) => e.event === 'daemon.started', 'start');
      await bench.insert(w, 'vfat', folder, mediaRoot, 'fat', { method: 'fuse' });
      const refused = await d.waitFor((e) => e.event === 'media.refused', 'the refusal');
      expect(refused).toMatchObject({ code: 'E_MEDIA_REFUSED' });
      expect(refused.message).toContain('is vfat served by the FUSE driver fusefat');
      expect(refused.message).toContain('--allow-fuse-drivers');
      expect(await d.stop()).toBe(0);

      // Allowed: the stick still mounted is read; a FUSE mount that does not name its driver (type `fuse`) is not.
      d = start(w, mediaRoot, true);
      const done = await d.waitFor((e) => e.event === 'import.accepted', 'the import');
      expect(done.bundle).toBe(id);
      await bench.insert(w, 'iso9660', folder, mediaRoot, 'bare', { method: 'fuse', fuseSubtype: false });
      const bare = await d.waitFor((e) => e.event === 'media.refused', 'the bare fuse refusal');
      expect(bare.message).toContain('is a FUSE filesystem (fuse) not known to implement');
      const audit = auditSince(w.inside);
      expect(audit.find((a) => a.kind === 'media.inserted')?.message).toContain('(vfat via fuse.fusefat, ro,');
      expect(audit.filter((a) => a.kind === 'media.refused').map((a) => a.code)).toEqual([
        'E_MEDIA_REFUSED',
        'E_MEDIA_REFUSED',
      ]);
    },
  );

  it.skipIf(fat !== null)(
    'fusefat shows 8.3 names stored with the NT lower-case flag (as Windows and mtools write them) in upper case: ' +
      `such a stick is refused, naming the entry${skipped(fat)}`,
    async () => {
      const { w, mediaRoot, folder, id } = await stick(200 * 1024);
      const image = w.path('mtools.img');
      fs.writeFileSync(image, '');
      fs.truncateSync(image, 32 * MiB);
      run('mkfs.vfat', ['-n', 'MTOOLS', image]);
      run('mcopy', ['-s', '-i', image, path.join(folder, 'ecluse'), '::/']);
      const d = start(w, mediaRoot, true);
      await d.waitFor((e) => e.event === 'daemon.started', 'start');
      await bench.insert(w, 'vfat', folder, mediaRoot, 'mtools', { method: 'fuse', image });
      const refused = await d.waitFor((e) => e.event.startsWith('import.') && e.event !== 'import.started', 'outcome');
      expect(refused).toMatchObject({ event: 'import.refused', bundle: id, code: 'E_UNEXPECTED_FILE' });
      expect(refused.message).toMatch(/holds (TRUST|VOLUMES),/);
      expect(snapshot(w.inside).images).toHaveLength(0);
    },
  );

  it.skipIf(exfat !== null)(
    `an exFAT stick served by exfat-fuse (type fuseblk, noexec dropped) is refused even when allowed${skipped(exfat)}`,
    async () => {
      const { w, mediaRoot, folder } = await stick(200 * 1024);
      const image = w.path('exfat.img');
      fs.writeFileSync(image, '');
      fs.truncateSync(image, 32 * MiB);
      run('mkfs.exfat', ['-L', 'EXSTICK', image]);
      const fill = tmpDir('ecluse-exfat-fill-');
      const rw = run('losetup', ['-f', '--show', image]).toString().trim();
      try {
        run('mount', ['-t', 'exfat-fuse', rw, fill]);
        try {
          copyTree(folder, fill);
        } finally {
          run('umount', [fill]);
        }
      } finally {
        run('losetup', ['-d', rw]);
        fs.rmSync(fill, { recursive: true, force: true });
      }
      const d = start(w, mediaRoot, true);
      await d.waitFor((e) => e.event === 'daemon.started', 'start');
      const ro = run('losetup', ['-f', '--show', '-r', image]).toString().trim();
      const mp = path.join(mediaRoot, 'exfat');
      fs.mkdirSync(mp);
      run('mount', ['-t', 'exfat-fuse', '-o', 'ro,nosuid,nodev,noexec', ro, mp]);
      cleanups.push(() => {
        run('umount', ['-l', mp]);
        run('losetup', ['-d', ro]);
      });
      const line = fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .find((l) => l.split(' ')[4] === mp);
      expect(line).toMatch(/ - fuseblk /);
      const refused = await d.waitFor((e) => e.event === 'media.refused', 'the refusal');
      expect(refused.message).toContain('fuseblk does not say which driver serves it');
    },
  );
});
