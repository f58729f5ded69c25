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
 * The sticks are made on the host while the guest boots (test/helpers/appliance-sticks.ts); the last scenarios,
 * self-update through the lock, are in appliance-self-update.ts.
 *
 * The scenarios share one boot and run in order: the station's state carries from one to the next, as at a site.
 * Needs root, qemu-system-x86_64, mmdebstrap, mkfs.vfat, mcopy, mkfs.exfat + exfat-fuse, xorriso, mkfs.ext4
 * (scripts/install-deps.sh). Times are printed at the end.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Guest, HOME, MINUTE, stopwatch, until } from '../helpers/appliance.js';
import {
  buildAppliance,
  makeApplianceSticks,
  PULLED,
  VERSION,
  type ApplianceSticks,
} from '../helpers/appliance-sticks.js';
import { which } from '../helpers/media.js';
import { Vm } from '../helpers/vm.js';
import { tmpDir } from '../helpers/world.js';
import { selfUpdateScenarios } from './appliance-self-update.js';

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
/** What the daemon drop-in adds to the shipped ExecStart: reading slow enough to pull a stick mid-import. */
const DAEMON_FLAGS = '--read-rate 1M --mount-timeout 10';

describe.skipIf(skip !== null)('the appliance under QEMU', () => {
  let dir = '';
  let vm: Vm | null = null;
  let deb = '';
  let made: ApplianceSticks | undefined;
  const { times, timed } = stopwatch();
  const stick = (name: string) => (made as ApplianceSticks).stick(name);
  const bundle = (name: string) => (made as ApplianceSticks).bundles[name] as string;

  beforeAll(async () => {
    dir = tmpDir('ecluse-appliance-');
    const built = await timed('the image (build or cache)', () => buildAppliance(dir));
    deb = built.deb;
    // The boot starts now; the sticks are made on the host meanwhile.
    vm = Vm.boot(built.image, dir);
    made = await timed('the sticks (host)', () => makeApplianceSticks(dir, deb));
    await timed('boot until the guest agent answers', () => vm?.ready(15 * MINUTE));
  }, 40 * MINUTE);

  afterAll(async () => {
    await vm?.stop();
    console.log(`appliance times (s): ${JSON.stringify(times)}`);
    made?.world.cleanup();
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
      expect(v.stdout.trim()).toBe(VERSION);
      expect((await guest().vm.exec(['dpkg-query', '-W', '-f', '${Status} ${Version}', 'ecluse'])).stdout).toBe(
        `install ok installed ${VERSION}`,
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
      const id = bundle('good');
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
      const id = bundle('two-a');
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
      const id = bundle('iso');
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
      const id = bundle('hostile');
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
      const id = bundle('pulled');
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
      expect((await guest().vm.exec(['/usr/bin/ecluse', '--version'])).stdout.trim()).toBe(VERSION);
      const after = await until('the daemon restarted and READY', async () => {
        const u = await guest().unit('ecluse-daemon');
        return u.ActiveState === 'active' && u.MainPID !== before.MainPID ? u : null;
      });
      expect(after.SubState).toBe('running');
      await guest().vm.unplug('deb');
    },
    15 * MINUTE,
  );

  selfUpdateScenarios({ guest, plugAndMount, bundle, stick, timed });
});
