/**
 * The appliance proof: the image of `npm run appliance` (Debian 13, its nodejs, the écluse .deb installed with dpkg
 * and no network; reused from /var/cache/ecluse-appliance when its inputs did not change) boots under QEMU (TCG:
 * this machine's /dev/kvm is a PVM host that cannot run Debian's kernel). Everything inside is reached through the
 * guest agent; the image has no network device. Sticks are disk images made here and hot-plugged through QMP
 * (device_add usb-storage on xhci.0): the shipped udev rule and mount helper mount them read-only, the daemon (the
 * shipped unit, plus a drop-in that only slows reading to 1 MB/s and shortens the mount timeout) notices them through
 * the `usb` package and the mount table. After each stick the test reads `ecluse status --json`, the Glance API from
 * inside the guest, and `journalctl -u ecluse-daemon -o json`.
 *
 * The last scenario is self-update through the lock: the next version of the package and one whose daemon never
 * reports READY each travel as an `ecluse-package` artifact in a bundle exported here for vm-1; the daemon imports and
 * hands them over, the path unit (enabled as shipped) starts the root installer, which re-verifies each against the
 * anchors root pinned and installs it (or rolls it back); a package root drops in without evidence is refused. The
 * installer's journal and the audit log (`ecluse audit export` in the guest) are read for each.
 *
 * The scenarios share one boot and run in order: the station's state carries from one to the next, as at a site.
 * Needs root, qemu-system-x86_64, mmdebstrap, mkfs.vfat, mcopy, mkfs.exfat + exfat-fuse, xorriso, mkfs.ext4
 * (scripts/install-deps.sh). Times are printed at the end.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AS_ECLUSE, Guest, HOME, MINUTE, until, type AuditEntry, type JournalEntry } from '../helpers/appliance.js';
import { which } from '../helpers/media.js';
import { makeBlankStick, makeExfatStick, makeExt4Stick, makeIsoStick, makeVfatStick, Vm } from '../helpers/vm.js';
import {
  bundleOn,
  copyMedia,
  ecluseOk,
  flipByte,
  makeKeys,
  REPO,
  tmpDir,
  world,
  type World,
} from '../helpers/world.js';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
const TOOLS = ['qemu-system-x86_64', 'mmdebstrap', 'mkfs.vfat', 'mcopy', 'mkfs.exfat', 'mount.exfat-fuse', 'xorriso'];
const missing = [...TOOLS, 'mkfs.ext4', 'dpkg-deb'].filter((t) => !which(t));
// ECLUSE_APPLIANCE_TEST=0 turns it off (a developer's quick run of the slow project); CI runs it.
const skip =
  process.env.ECLUSE_APPLIANCE_TEST === '0'
    ? 'turned off (ECLUSE_APPLIANCE_TEST=0)'
    : process.getuid?.() !== 0
      ? 'needs root (mmdebstrap, FUSE for the exFAT stick)'
      : missing.length > 0
        ? `missing ${missing.join(', ')}`
        : null;
if (skip) console.warn(`appliance test skipped: ${skip} (run scripts/install-deps.sh)`);

const MiB = 1024 * 1024;
const NEXT = `${pkg.version}+next1`;
const BROKEN = `${pkg.version}+next2`;
/** A newer package root drops into the spool with no evidence: the root's own check refuses it. */
const ROGUE = `${pkg.version}+next9`;

/**
 * Another version of the build's package (dpkg-deb -R, then -b): the control Version and what `ecluse --version`
 * says; `hang`: its daemon starts but never reports READY (it waits forever before doing anything).
 */
function repackDeb(deb: string, out: string, version: string, hang: boolean): void {
  const x = `${out}.d`;
  execFileSync('dpkg-deb', ['-R', deb, x]);
  const control = path.join(x, 'DEBIAN', 'control');
  fs.writeFileSync(control, fs.readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${version}`));
  const main = path.join(x, 'usr', 'lib', 'ecluse', 'dist', 'ecluse', 'main.js');
  const shipped = fs.readFileSync(main, 'utf8');
  let js = shipped.replace(/\.version\((['"])([^'"]+)\1\)/, (_m, _q: string, v: string) =>
    v === pkg.version ? `.version('${version}')` : _m,
  );
  if (js === shipped) throw new Error(`${main} does not set the version ${pkg.version}`);
  if (hang) {
    const nl = js.indexOf('\n') + 1;
    js = `${js.slice(0, nl)}if (process.argv.includes('daemon')) await new Promise(() => setInterval(() => {}, 60_000));\n${js.slice(nl)}`;
  }
  fs.writeFileSync(main, js);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '-z1', '--build', x, out], { stdio: 'ignore' });
  fs.rmSync(x, { recursive: true });
}
const PULLED = 32 * MiB;
/** What the daemon drop-in adds to the shipped ExecStart: reading slow enough to pull a stick mid-import. */
const DAEMON_FLAGS = '--read-rate 1M --mount-timeout 10';

describe.skipIf(skip !== null)('the appliance under QEMU', () => {
  let dir = '';
  let vm: Vm | null = null;
  let w: World;
  let image = '';
  let deb = '';
  const bundles: Record<string, string> = {};
  const times: Record<string, number> = {};
  const timed = async <T>(what: string, f: () => Promise<T> | T): Promise<T> => {
    const t = Date.now();
    try {
      return await f();
    } finally {
      times[what] = Math.round((Date.now() - t) / 1000);
      console.log(`appliance: ${what} took ${times[what]} s`);
    }
  };
  const stick = (name: string) => path.join(dir, `${name}.img`);
  const exportTo = async (name: string, args: string[] = []) => {
    const r = (await w.exportTo(w.path(name), args)).json as { bundle: { id: string } };
    bundles[name] = r.bundle.id;
    return r.bundle.id;
  };

  beforeAll(async () => {
    dir = tmpDir('ecluse-appliance-');
    await timed('the image (build or cache)', () => {
      deb = execFileSync('bash', [path.join(REPO, 'packaging/build-deb.sh'), '--no-build', '--out', dir], {
        encoding: 'utf8',
      })
        .trim()
        .split('\n')
        .pop() as string;
      image = execFileSync('bash', [path.join(REPO, 'packaging/build-appliance.sh'), '--deb', deb], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
      })
        .trim()
        .split('\n')
        .pop() as string;
    });
    // The boot starts now; the sticks are made on the host meanwhile.
    vm = Vm.boot(image, dir);
    await timed('the sticks (host)', async () => {
      const keys = await makeKeys(path.join(dir, 'keys'), ['alice']);
      w = await world({ keys, site: 'vm-1' });
      fs.mkdirSync(w.path('truststick'));
      fs.cpSync(keys.trust, w.path('truststick', 'trust'), { recursive: true });
      makeVfatStick(stick('trust'), w.path('truststick'), 'TRUST');
      // 1: a good bundle on a partitioned vfat stick.
      await w.addImage('debian', '13.1', 3 * MiB + 5);
      await exportTo('good');
      makeVfatStick(stick('good'), w.path('good'), 'BUNDLE');
      // 2: one bundle over two sticks, exFAT (volume 1) and ext4 (volume 2).
      await w.addImage('two-sticks', '1.0', 5 * MiB);
      await exportTo('two-a', ['--to', w.path('two-b'), '--media-size', '3M']);
      makeExfatStick(stick('two-a'), w.path('two-a'), 'TWOA');
      makeExt4Stick(stick('two-b'), w.path('two-b'), 'twob');
      // 3: an ISO written to a stick.
      await w.addImage('from-iso', '1.0', 2 * MiB);
      await exportTo('iso');
      makeIsoStick(stick('iso'), w.path('iso'), 'ECLUSE_ISO');
      // 4: a hostile bundle: one byte of its volume changed after signing.
      await w.addImage('hostile', '1.0', 1 * MiB);
      await exportTo('hostile-src');
      copyMedia(w.path('hostile-src'), w.path('hostile'));
      bundles.hostile = bundles['hostile-src'] as string;
      flipByte(bundleOn(w.path('hostile')).volume(1), 4096);
      makeExt4Stick(stick('hostile'), w.path('hostile'), 'hostile');
      // 5: a blank stick (no filesystem).
      makeBlankStick(stick('blank'));
      // 6: a bundle long enough to read (32 MiB at 1 MB/s) to pull its stick mid-import.
      await w.addImage('pulled', '1.0', PULLED);
      await exportTo('pulled');
      makeExt4Stick(stick('pulled'), w.path('pulled'), 'pulled');
      // 7: the package itself, carried in on a stick.
      fs.mkdirSync(w.path('debstick'));
      fs.copyFileSync(deb, w.path('debstick', path.basename(deb)));
      makeExt4Stick(stick('deb'), w.path('debstick'), 'ecluse-deb');
      // 8: self-update through bundles: the next version, and a next-but-one whose daemon never reports READY, each
      // an ecluse-package artifact in its own bundle for vm-1; and, on a plain stick, a package with no evidence.
      const addPackage = (file: string) =>
        ecluseOk(['relay', 'add', file, '--type', 'ecluse-package', '--json'], { home: w.outside });
      repackDeb(deb, w.path('next.deb'), NEXT, false);
      await addPackage(w.path('next.deb'));
      await exportTo('upd-next');
      makeExt4Stick(stick('upd-next'), w.path('upd-next'), 'updnext');
      repackDeb(deb, w.path('broken.deb'), BROKEN, true);
      await addPackage(w.path('broken.deb'));
      await exportTo('upd-broken');
      makeExt4Stick(stick('upd-broken'), w.path('upd-broken'), 'updbroken');
      fs.mkdirSync(w.path('rogue'));
      repackDeb(deb, w.path('rogue', 'rogue.deb'), ROGUE, false);
      makeExt4Stick(stick('rogue'), w.path('rogue'), 'rogue');
    });
    await timed('boot until the guest agent answers', () => vm?.ready(15 * MINUTE));
  }, 40 * MINUTE);

  afterAll(async () => {
    await vm?.stop();
    console.log(`appliance times (s): ${JSON.stringify(times)}`);
    w?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const guest = () => new Guest(vm as Vm);
  const plugAndMount = async (id: string, serial: string): Promise<string> => {
    await guest().vm.plug(id, stick(id), serial);
    const line = await until(`stick ${serial} mounted`, () => guest().mountOf(serial), 2 * MINUTE);
    return line;
  };

  it(
    'has no network device, listens on nothing but loopback, and runs the build of this checkout',
    async () => {
      const net = await guest().vm.sh('ls /sys/class/net');
      expect(net.stdout.trim().split(/\s+/)).toEqual(['lo']);
      const v = await guest().vm.exec(['/usr/bin/ecluse', '--version']);
      expect(v).toMatchObject({ code: 0 });
      expect(v.stdout.trim()).toBe(pkg.version);
      expect((await guest().vm.exec(['dpkg-query', '-W', '-f', '${Status} ${Version}', 'ecluse'])).stdout).toBe(
        `install ok installed ${pkg.version}`,
      );
      // Listening TCP sockets (state 0A): none before site init (ecluse-serve waits for it).
      const listening = await guest().vm.sh('cat /proc/net/tcp /proc/net/tcp6 | awk \'$4 == "0A" {print $2}\'');
      expect(listening.stdout.trim()).toBe('');
      const boot = await guest().vm.sh('systemd-analyze time; systemd-analyze blame | head -n 8');
      console.log(`appliance: the guest's own boot times:\n${boot.stdout}`);
    },
    15 * MINUTE,
  );

  it(
    'mounts a plugged stick read-only with the shipped udev rule, sets the site up from it, and the daemon is READY',
    async () => {
      const mnt = await timed('trust stick mounted', () => plugAndMount('trust', 'ECLUSE0001'));
      const [target, fstype, options] = mnt.split(' ');
      expect(target).toMatch(/^\/run\/ecluse\/media\/sd[a-z]1$/);
      expect(fstype).toBe('vfat');
      for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) expect(options?.split(',')).toContain(o);
      const init = await timed('site init', () =>
        guest().vm.sh(
          `setpriv --reuid=ecluse --regid=ecluse --init-groups ecluse --home ${HOME} site init ` +
            `--trust ${target}/trust --site vm-1 --json`,
        ),
      );
      expect(init, init.stderr).toMatchObject({ code: 0 });
      expect(JSON.parse(init.stdout)).toMatchObject({ ok: true });
      await guest().vm.unplug('trust');
      const dropIn = await guest().vm.sh(
        'mkdir -p /etc/systemd/system/ecluse-daemon.service.d && printf "[Service]\\nExecStart=\\nExecStart=' +
          `/usr/bin/ecluse --home ${HOME} daemon --media-root /run/ecluse/media ${DAEMON_FLAGS}\\n" ` +
          '>/etc/systemd/system/ecluse-daemon.service.d/test.conf && systemctl daemon-reload',
      );
      expect(dropIn, dropIn.stderr).toMatchObject({ code: 0 });
      await timed('daemon READY', async () => {
        const start = await guest().vm.sh('systemctl start ecluse-daemon.service ecluse-serve.service', 10 * MINUTE);
        expect(start, start.stderr).toMatchObject({ code: 0 });
      });
      const show = await guest().vm.sh('systemctl show -p ActiveState,SubState,Type,NotifyAccess ecluse-daemon');
      expect(show.stdout).toContain('ActiveState=active');
      expect(show.stdout).toContain('Type=notify');
      const listening = await until('ecluse-serve listening', async () => {
        const r = await guest().vm.sh('cat /proc/net/tcp /proc/net/tcp6 | awk \'$4 == "0A" {print $2}\'');
        return r.stdout.trim() !== '' ? r.stdout.trim() : null;
      });
      expect(listening.split('\n')).toEqual(['0100007F:244C']); // 127.0.0.1:9292 only
      // USB hotplug through the usb package is on (it said so, or said why not, when it started).
      expect(await guest().events('usb.unavailable')).toEqual([]);
    },
    15 * MINUTE,
  );

  it(
    'imports a good bundle from a partitioned vfat stick plugged in after READY; status, Glance and journal agree',
    async () => {
      const id = bundles.good as string;
      await guest().vm.plug('good', stick('good'), 'ECLUSE0007');
      const status = await timed('vfat: plug to imported', () =>
        guest().untilStatus('the import', (s) => s.last?.bundle === id, 10 * MINUTE),
      );
      expect(status.last).toMatchObject({ outcome: 'accepted', bundle: id });
      // The operator's command reads the same.
      expect(await guest().status()).toMatchObject({ state: 'idle', last: { outcome: 'accepted', bundle: id } });
      expect(await guest().images()).toEqual([
        expect.objectContaining({ name: 'debian', status: 'active', size: 3 * MiB + 5 }),
      ]);
      const journal = await guest().journal();
      const accepted = journal.find((e) => e.ECLUSE_EVENT === 'import.accepted');
      expect(accepted).toMatchObject({ ECLUSE_BUNDLE: id, SYSLOG_IDENTIFIER: 'ecluse', PRIORITY: '6' });
      expect(journal.find((e) => e.ECLUSE_EVENT === 'image.promoted')).toMatchObject({
        ECLUSE_ARTIFACT: 'debian@13.1',
      });
      // The usb package saw the stick arrive before anything mounted it, with its identity from sysfs.
      const attached = journal.find(
        (e) => e.ECLUSE_EVENT === 'usb.attached' && e.ECLUSE_IDENTITY?.includes('ECLUSE0007'),
      );
      expect(attached?.MESSAGE).toMatch(/stick ECLUSE0007 inserted, mounting/);
      const admitted = journal.find(
        (e) => e.ECLUSE_EVENT === 'media.accepted' && e.ECLUSE_IDENTITY?.includes('ECLUSE0007'),
      );
      expect(admitted?.ECLUSE_MEDIA).toMatch(/\/run\/ecluse\/media\/sd[a-z]1/);
      await guest().vm.unplug('good');
    },
    15 * MINUTE,
  );

  it(
    'assembles one bundle over an exFAT and an ext4 stick plugged in out of order',
    async () => {
      const id = bundles['two-a'] as string;
      await guest().vm.plug('two-b', stick('two-b'), 'ECLUSE0021');
      const waiting = await timed('ext4 (volume 2) first: waiting', () =>
        guest().untilStatus(
          'volume 2 kept',
          (s) => s.waiting.some((b) => b.bundle === id && b.have.includes('vol-0002.tar')),
          5 * MINUTE,
        ),
      );
      expect(waiting.waiting.find((b) => b.bundle === id)).toMatchObject({
        have: ['vol-0002.tar'],
        missing: ['vol-0001.tar'],
        message: expect.stringMatching(/^insert volume 1 of 2 of bundle /),
      });
      expect((await guest().mountOf('ECLUSE0021'))?.split(' ')[1]).toBe('ext4');
      await guest().vm.plug('two-a', stick('two-a'), 'ECLUSE0020');
      const done = await timed('exFAT (volume 1): imported', () =>
        guest().untilStatus('the import', (s) => s.last?.bundle === id, 5 * MINUTE),
      );
      expect(done.last).toMatchObject({ outcome: 'accepted' });
      expect(done.waiting).toEqual([]);
      expect((await guest().mountOf('ECLUSE0020'))?.split(' ')[1]).toBe('exfat');
      expect((await guest().images()).map((i) => i.name).sort()).toEqual(['debian', 'two-sticks']);
      expect(await guest().events('import.accepted')).toContainEqual(expect.objectContaining({ ECLUSE_BUNDLE: id }));
      await guest().vm.unplug('two-a');
      await guest().vm.unplug('two-b');
    },
    15 * MINUTE,
  );

  it(
    'imports a bundle from an ISO 9660 image written to a stick',
    async () => {
      const id = bundles.iso as string;
      await guest().vm.plug('iso', stick('iso'), 'ECLUSE0030');
      const done = await timed('ISO: plug to imported', () =>
        guest().untilStatus('the import', (s) => s.last?.bundle === id, 5 * MINUTE),
      );
      expect(done.last).toMatchObject({ outcome: 'accepted' });
      expect((await guest().mountOf('ECLUSE0030'))?.split(' ')[1]).toBe('iso9660');
      expect((await guest().images()).map((i) => i.name)).toContain('from-iso');
      await guest().vm.unplug('iso');
    },
    15 * MINUTE,
  );

  it(
    'refuses a hostile bundle (a volume changed after signing), names the check, and the daemon keeps running',
    async () => {
      const id = bundles.hostile as string;
      const before = await guest().unit('ecluse-daemon');
      await guest().vm.plug('hostile', stick('hostile'), 'ECLUSE0040');
      const done = await timed('hostile: plug to refused', () =>
        guest().untilStatus('the refusal', (s) => s.last?.bundle === id, 5 * MINUTE),
      );
      // The check that failed (the volume's signed sha256) and what to do next, in one line.
      expect(done.last).toMatchObject({ outcome: 'refused', code: 'E_DIGEST' });
      expect(done.last?.message).toMatch(
        /^E_DIGEST: volume vol-0001\.tar does not match the sha256 in the signed statement .*; export it again outside: ecluse export --resend 4 /,
      );
      const code = 'E_DIGEST';
      expect(await guest().status()).toMatchObject({ last: { outcome: 'refused', bundle: id, code } });
      expect((await guest().images()).map((i) => i.name)).not.toContain('hostile');
      const refused = (await guest().events('import.refused')).find((e) => e.ECLUSE_BUNDLE === id);
      expect(refused).toMatchObject({ ECLUSE_CODE: code, PRIORITY: expect.stringMatching(/^[34]$/) });
      const after = await guest().unit('ecluse-daemon');
      expect(after).toMatchObject({ ActiveState: 'active', MainPID: before.MainPID, NRestarts: before.NRestarts });
      await guest().vm.unplug('hostile');
    },
    15 * MINUTE,
  );

  it(
    'reports a blank stick as not mountable, with its USB identity, and keeps running',
    async () => {
      await guest().vm.plug('blank', stick('blank'), 'ECLUSE0050');
      const s = await timed('blank: plug to reported', () =>
        guest().untilStatus(
          'the report',
          (st) => (st.sticks ?? []).some((k) => k.usb.serial === 'ECLUSE0050' && k.state === 'not-mounted'),
          3 * MINUTE,
        ),
      );
      const k = s.sticks?.find((x) => x.usb.serial === 'ECLUSE0050');
      expect(k?.message).toMatch(/^stick ECLUSE0050 was not mounted within 10 s: it holds no filesystem écluse reads/);
      const warned = (await guest().events('usb.not-mounted')).find((e) => e.ECLUSE_IDENTITY?.includes('ECLUSE0050'));
      expect(warned).toMatchObject({ ECLUSE_CODE: 'E_MEDIA_REFUSED', PRIORITY: '4' });
      expect(await guest().mountOf('ECLUSE0050')).toBeNull();
      await guest().vm.unplug('blank');
      await guest().untilStatus(
        'the stick gone from the status',
        (st) => !(st.sticks ?? []).some((x) => x.usb.serial === 'ECLUSE0050'),
        2 * MINUTE,
      );
      expect(await guest().unit('ecluse-daemon')).toMatchObject({ ActiveState: 'active' });
    },
    15 * MINUTE,
  );

  it(
    'a stick pulled mid-import promotes nothing; plugged in again, the bundle is imported',
    async () => {
      const id = bundles.pulled as string;
      await guest().vm.plug('pulled', stick('pulled'), 'ECLUSE0060');
      await timed('pulled: plug to copying', () =>
        guest().untilStatus(
          'the copy under way',
          (s) => s.progress?.bundle === id && s.progress.bytesDone > 0,
          5 * MINUTE,
        ),
      );
      const interrupted = await timed('pulled: unplug to interrupted', async () => {
        await guest().vm.unplug('pulled');
        return guest().untilStatus('the interruption', (s) => s.last?.bundle === id, 2 * MINUTE);
      });
      expect(interrupted.last).toMatchObject({ outcome: 'interrupted', code: 'E_MEDIA_REMOVED' });
      expect((await guest().images()).map((i) => i.name)).not.toContain('pulled');
      const staging = await guest().vm.sh(`find ${HOME}/store/staging -type f 2>/dev/null | wc -l`);
      expect(staging.stdout.trim()).toBe('0');
      await guest().vm.plug('pulled', stick('pulled'), 'ECLUSE0060');
      const done = await timed('pulled: plugged again to imported', () =>
        guest().untilStatus('the import', (s) => s.last?.bundle === id && s.last.outcome === 'accepted', 5 * MINUTE),
      );
      expect(done.last).toMatchObject({ outcome: 'accepted' });
      expect((await guest().images()).find((i) => i.name === 'pulled')).toMatchObject({
        status: 'active',
        size: PULLED,
      });
      expect(await guest().events('import.interrupted')).toContainEqual(
        expect.objectContaining({ ECLUSE_BUNDLE: id, ECLUSE_CODE: 'E_MEDIA_REMOVED' }),
      );
      await guest().vm.unplug('pulled');
    },
    15 * MINUTE,
  );

  it(
    'installs the .deb carried in on a stick with apt and no network; the services come back, same version',
    async () => {
      const before = await guest().unit('ecluse-daemon');
      const mnt = await plugAndMount('deb', 'ECLUSE0070');
      const file = `${mnt.split(' ')[0]}/${path.basename(deb)}`;
      const r = await timed('apt install of the .deb', () =>
        guest().vm.sh(`DEBIAN_FRONTEND=noninteractive apt-get install --reinstall -y ${file} 2>&1`, 10 * MINUTE),
      );
      expect(r, r.stdout).toMatchObject({ code: 0 });
      expect(r.stdout).toMatch(/Setting up ecluse \(/);
      expect((await guest().vm.exec(['/usr/bin/ecluse', '--version'])).stdout.trim()).toBe(pkg.version);
      const after = await until('the daemon restarted and READY', async () => {
        const u = await guest().unit('ecluse-daemon');
        return u.ActiveState === 'active' && u.MainPID !== before.MainPID ? u : null;
      });
      expect(after.SubState).toBe('running');
      await guest().vm.unplug('deb');
    },
    15 * MINUTE,
  );

  it(
    'updates itself through bundles: the next version runs, one never READY is rolled back, one without evidence is refused; all audited',
    async () => {
      // As shipped: the path unit is enabled and watching. The test only makes the installer wait 240 s for READY
      // (software emulation) instead of 300 s.
      const shipped = await guest().vm.sh(
        'systemctl is-enabled ecluse-update.path; systemctl is-active ecluse-update.path',
      );
      expect(shipped.stdout.trim().split('\n')).toEqual(['enabled', 'active']);
      const setup = await guest().vm.sh(
        'mkdir -p /etc/systemd/system/ecluse-update.service.d && printf "[Service]\\nEnvironment=ECLUSE_UPDATE_READY_TIMEOUT=240\\n" ' +
          '>/etc/systemd/system/ecluse-update.service.d/test.conf && systemctl daemon-reload',
      );
      expect(setup, setup.stderr).toMatchObject({ code: 0 });
      // The operator's steps: root pins the site's anchors (what the installer checks against), and the site's
      // policy opts in to the type.
      const pin = await guest().vm.exec(['/usr/bin/ecluse', '--home', HOME, 'self-update', 'pin', '--json']);
      expect(pin, pin.stderr).toMatchObject({ code: 0 });
      const policy = await guest().vm.sh(
        `printf 'version: 1\\nrules:\\n  - name: everything\\n    artifacts: ["*"]\\n` +
          `    types: [vm-image, ecluse-package]\\n' >/tmp/policy.yaml && ` +
          `chmod 0644 /tmp/policy.yaml && ${AS_ECLUSE} --home ${HOME} policy apply /tmp/policy.yaml --json`,
      );
      expect(policy, policy.stderr).toMatchObject({ code: 0 });

      /** The first installer entry after the `after` first ones whose event is one of `events`. */
      const updateEvent = (events: string[], after: number) =>
        until(
          `one of ${events.join(', ')}`,
          async () =>
            (await guest().updateJournal()).slice(after).find((x) => events.includes(x.ECLUSE_EVENT ?? '')) ?? null,
          10 * MINUTE,
        );
      const count = async () => (await guest().updateJournal()).length;
      /** The audit log once it holds an event of each kind in `kinds` after index `after`. */
      const audited = (kinds: string[], after: number) =>
        until(
          `${kinds.join(', ')} in the audit log`,
          async () => {
            const events = (await guest().audit()).filter((e) => e.index >= after);
            return kinds.every((k) => events.some((e) => e.kind === k)) ? events : null;
          },
          5 * MINUTE,
        );
      const auditSize = async () => (await guest().audit()).length;
      const installed = async () => (await guest().vm.exec(['dpkg-query', '-W', '-f', '${Version}', 'ecluse'])).stdout;
      const byKind = (events: AuditEntry[], kind: string) => events.find((e) => e.kind === kind);

      // 1. A package dropped into the spool by root, with no evidence: refused by the root's check, nothing installed.
      let seen = await count();
      let from = await auditSize();
      const mnt = (await plugAndMount('rogue', 'ECLUSE0090')).split(' ')[0] as string;
      const drop = await guest().vm.sh(
        `s=$(sha256sum ${mnt}/rogue.deb | cut -d' ' -f1) && cp ${mnt}/rogue.deb /var/lib/ecluse-update/incoming/.$s && ` +
          `mv /var/lib/ecluse-update/incoming/.$s /var/lib/ecluse-update/incoming/$s.deb && echo $s`,
      );
      expect(drop, drop.stderr).toMatchObject({ code: 0 });
      const rogueSum = drop.stdout.trim();
      const refused = await timed('self-update: a package without evidence, refused', () =>
        updateEvent(['update.refused', 'update.installing', 'update.installed'], seen),
      );
      expect(refused).toMatchObject({ ECLUSE_EVENT: 'update.refused', ECLUSE_PACKAGE: rogueSum });
      expect(refused.ECLUSE_CODE).toMatch(/^E_[A-Z_]+$/);
      expect(refused.MESSAGE).toMatch(/the root's check refused/);
      // Once audited (the installer's result is its last step), the package is in refused/ and nothing else moved.
      const refusedAudit = byKind(await audited(['update.refused'], from), 'update.refused');
      expect(refusedAudit).toMatchObject({ outcome: 'refused', code: refused.ECLUSE_CODE, bundle_id: null });
      expect(await installed()).toBe(pkg.version);
      const spool = await guest().vm.sh(
        'ls -A /var/lib/ecluse-update/incoming; echo --; ls -A /var/lib/ecluse-update/refused',
      );
      expect(spool.stdout.split('--')[0]?.trim()).toBe('');
      expect(spool.stdout.split('--')[1]?.trim().split('\n')).toContain(`${rogueSum}.deb`);
      await guest().vm.unplug('rogue');

      // 2. The next version, in a bundle: imported, handed over, checked by root, installed; the new daemon READY.
      seen = await count();
      from = await auditSize();
      await guest().vm.plug('upd-next', stick('upd-next'), 'ECLUSE0091');
      const imported = await timed('self-update: the next version imported', () =>
        guest().untilStatus('the import', (s) => s.last?.bundle === bundles['upd-next'], 10 * MINUTE),
      );
      expect(imported.last).toMatchObject({ outcome: 'accepted' });
      await guest().vm.unplug('upd-next');
      const done = await timed('self-update: hand-over to READY on the next version', () =>
        updateEvent(['update.installed', 'update.failed', 'update.refused'], seen),
      );
      expect(done).toMatchObject({
        ECLUSE_EVENT: 'update.installed',
        ECLUSE_VERSION: NEXT,
        ECLUSE_PREVIOUS: pkg.version,
      });
      expect((await guest().vm.exec(['/usr/bin/ecluse', '--version'])).stdout.trim()).toBe(NEXT);
      expect(await guest().unit('ecluse-daemon')).toMatchObject({ ActiveState: 'active', SubState: 'running' });
      const nextAudit = await audited(['update.handed-over', 'update.installed'], from);
      expect(byKind(nextAudit, 'update.handed-over')).toMatchObject({ bundle_id: bundles['upd-next'] });
      expect(byKind(nextAudit, 'update.installed')).toMatchObject({
        outcome: 'accepted',
        artifact: `ecluse@${NEXT}`,
        bundle_id: bundles['upd-next'],
      });
      // The evidence went with the install; the installed package is the one kept to roll back to.
      const after = await guest().vm.sh(
        'ls -A /var/lib/ecluse-update/incoming /var/lib/ecluse-update/installing; dpkg-deb -f /var/lib/ecluse-update/current.deb Version',
      );
      expect(after.stdout.trim().split('\n').pop()).toBe(NEXT);
      expect(after.stdout).not.toMatch(/[0-9a-f]{64}/);

      // 3. A next-but-one whose daemon never reports READY: installed, failed, the previous package reinstalled.
      seen = await count();
      from = await auditSize();
      await guest().vm.plug('upd-broken', stick('upd-broken'), 'ECLUSE0092');
      await timed('self-update: the never-READY version imported', () =>
        guest().untilStatus('the import', (s) => s.last?.bundle === bundles['upd-broken'], 10 * MINUTE),
      );
      await guest().vm.unplug('upd-broken');
      const rolledBack = await timed('self-update: a daemon never READY, rolled back', () =>
        updateEvent(['update.rolled-back', 'update.rollback-failed', 'update.installed', 'update.refused'], seen),
      );
      expect(rolledBack).toMatchObject({
        ECLUSE_EVENT: 'update.rolled-back',
        ECLUSE_VERSION: NEXT,
        ECLUSE_FAILED: BROKEN,
      });
      const failed = (await guest().updateJournal())
        .slice(seen)
        .find((e: JournalEntry) => e.ECLUSE_EVENT === 'update.failed');
      expect(failed).toMatchObject({ ECLUSE_CODE: 'E_UPDATE', ECLUSE_VERSION: BROKEN, ECLUSE_PREVIOUS: NEXT });
      expect(await installed()).toBe(NEXT);
      expect(await guest().unit('ecluse-daemon')).toMatchObject({ ActiveState: 'active', SubState: 'running' });
      const brokenAudit = await audited(['update.handed-over', 'update.failed', 'update.rolled-back'], from);
      expect(byKind(brokenAudit, 'update.failed')).toMatchObject({
        outcome: 'fail',
        code: 'E_UPDATE',
        artifact: `ecluse@${BROKEN}`,
        bundle_id: bundles['upd-broken'],
      });
      expect(byKind(brokenAudit, 'update.rolled-back')).toMatchObject({
        code: 'E_UPDATE',
        artifact: `ecluse@${BROKEN}`,
      });
      // Each installer result was audited once, and the chain verifies.
      const all = await guest().audit();
      for (const kind of ['update.refused', 'update.installed', 'update.failed', 'update.rolled-back']) {
        expect(
          all.filter((e) => e.kind === kind),
          kind,
        ).toHaveLength(1);
      }
      const verify = await guest().vm.sh(`${AS_ECLUSE} --home ${HOME} audit verify --json`);
      expect(verify, verify.stderr).toMatchObject({ code: 0 });
      // The station still imports after all this: its status file is fresh and names no error.
      expect((await guest().statusFile())?.state).toMatch(/^(idle|waiting)$/);
    },
    30 * MINUTE,
  );
});
