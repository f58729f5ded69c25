/**
 * The appliance proof: the image of `npm run appliance` (Debian 13, its nodejs, the écluse .deb installed with dpkg
 * and no network; reused from /var/cache/ecluse-appliance when its inputs did not change) boots under QEMU (TCG).
 * Through the guest agent: no network device, nothing listening but ecluse-serve on loopback, `ecluse --version` is
 * the build's. A stick holding the site's trust is plugged (QMP device_add usb-storage on xhci.0): the shipped udev
 * rule and mount helper mount it read-only; `site init` runs as the user ecluse from it; the daemon is started and
 * reaches READY under the real systemd (Type=notify). Then a partitioned vfat stick with a good bundle is plugged:
 * `ecluse status --json` reports it imported, the Glance API inside lists the image, and
 * `journalctl -u ecluse-daemon -o json` carries the ECLUSE_* fields.
 *
 * Needs root, qemu-system-x86_64, mmdebstrap, mkfs.vfat and mcopy (scripts/install-deps.sh appliance); several
 * minutes (times are printed).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { which } from '../helpers/media.js';
import { makeVfatStick, Vm } from '../helpers/vm.js';
import { ecluseOk, makeKeys, REPO, tmpDir, world, type World } from '../helpers/world.js';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
const missing = ['qemu-system-x86_64', 'mmdebstrap', 'mkfs.vfat', 'mcopy', 'dpkg-deb'].filter((t) => !which(t));
// Opt-in: under software emulation on 2 shared cores the boot alone took 2–7 minutes and the whole proof did not yet
// finish within its limit (issue 17's note), so it does not run in every CI run until it is seen passing.
const skip =
  process.env.ECLUSE_APPLIANCE_TEST !== '1'
    ? 'opt-in: set ECLUSE_APPLIANCE_TEST=1 (it builds or reuses the image and boots it under QEMU)'
    : process.getuid?.() !== 0
      ? 'needs root (mmdebstrap)'
      : missing.length > 0
        ? `missing ${missing.join(', ')}`
        : null;
if (skip) console.warn(`appliance test skipped: ${skip} (run scripts/install-deps.sh appliance)`);

const MINUTE = 60_000;

describe.skipIf(skip !== null)('the appliance under QEMU', () => {
  const dir = tmpDir('ecluse-appliance-');
  let vm: Vm | null = null;
  let w: World;
  let image = '';
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

  beforeAll(async () => {
    await timed('the image (build or cache)', () => {
      const deb = execFileSync('bash', [path.join(REPO, 'packaging/build-deb.sh'), '--no-build', '--out', dir], {
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
    const keys = await makeKeys(path.join(dir, 'keys'), ['alice']);
    w = await world({ keys, site: 'vm-1' });
    await w.addImage('debian', '13.1', 3 * 1024 * 1024 + 5);
    await w.exportTo(w.path('stick'));
    fs.mkdirSync(w.path('truststick'));
    fs.cpSync(keys.trust, w.path('truststick', 'trust'), { recursive: true });
    makeVfatStick(path.join(dir, 'trust.img'), w.path('truststick'), 'TRUST');
    makeVfatStick(path.join(dir, 'bundle.img'), w.path('stick'), 'BUNDLE');
    vm = Vm.boot(image, dir);
    await timed('boot until the guest agent answers', () => vm?.ready(15 * MINUTE));
  }, 40 * MINUTE);

  afterAll(async () => {
    await vm?.stop();
    console.log(`appliance times (s): ${JSON.stringify(times)}`);
    w?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const guest = () => vm as Vm;
  async function until<T>(what: string, f: () => Promise<T | null>, timeoutMs = 5 * MINUTE): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const v = await f();
      if (v !== null) return v;
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
  }

  it(
    'has no network device, listens on nothing but loopback, and runs the build of this checkout',
    async () => {
      const net = await guest().sh('ls /sys/class/net');
      expect(net.stdout.trim().split(/\s+/)).toEqual(['lo']);
      const v = await guest().exec(['/usr/bin/ecluse', '--version']);
      expect(v).toMatchObject({ code: 0 });
      expect(v.stdout.trim()).toBe(pkg.version);
      expect((await guest().sh('dpkg-query -W -f "${Status} ${Version}" ecluse')).stdout).toBe(
        `install ok installed ${pkg.version}`,
      );
      // Listening TCP sockets (state 0A): none before site init (ecluse-serve waits for it).
      const listening = await guest().sh('cat /proc/net/tcp /proc/net/tcp6 | awk \'$4 == "0A" {print $2}\'');
      expect(listening.stdout.trim()).toBe('');
    },
    15 * MINUTE,
  );

  it(
    'mounts a plugged stick read-only with the shipped udev rule, sets the site up from it, and the daemon is READY',
    async () => {
      await timed('trust stick mounted', async () => {
        await guest().plug('trust', path.join(dir, 'trust.img'), 'ECLUSE0001');
        await until('the trust stick mounted', async () => {
          const r = await guest().sh('findmnt -rn -o FSTYPE,OPTIONS /run/ecluse/media/sda1');
          return r.code === 0 ? r.stdout : null;
        });
      });
      const mnt = (await guest().sh('findmnt -rn -o FSTYPE,OPTIONS /run/ecluse/media/sda1')).stdout;
      expect(mnt).toMatch(/^vfat /);
      for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) expect(mnt.split(/[ ,]/)).toContain(o);
      const init = await timed('site init', () =>
        guest().sh(
          'setpriv --reuid=ecluse --regid=ecluse --init-groups ecluse --home /var/lib/ecluse site init ' +
            '--trust /run/ecluse/media/sda1/trust --site vm-1 --json',
        ),
      );
      expect(init, init.stderr).toMatchObject({ code: 0 });
      expect(JSON.parse(init.stdout)).toMatchObject({ ok: true });
      await timed('daemon READY', async () => {
        const start = await guest().sh('systemctl start ecluse-daemon.service ecluse-serve.service', 10 * MINUTE);
        expect(start, start.stderr).toMatchObject({ code: 0 });
      });
      const show = await guest().sh('systemctl show -p ActiveState,SubState,Type,NotifyAccess ecluse-daemon');
      expect(show.stdout).toContain('ActiveState=active');
      expect(show.stdout).toContain('Type=notify');
      const listening = await until('ecluse-serve listening', async () => {
        const r = await guest().sh('cat /proc/net/tcp /proc/net/tcp6 | awk \'$4 == "0A" {print $2}\'');
        return r.stdout.trim() !== '' ? r.stdout.trim() : null;
      });
      expect(listening.split('\n')).toEqual(['0100007F:244C']); // 127.0.0.1:9292 only
    },
    15 * MINUTE,
  );

  it(
    'imports a good bundle from a partitioned vfat stick plugged in after READY; status, Glance and journal agree',
    async () => {
      const bundleId = fs.readdirSync(w.path('stick', 'ecluse', 'bundles'))[0] as string;
      await guest().plug('bundle', path.join(dir, 'bundle.img'), 'ECLUSE0007');
      const status = await timed('plug to imported', () =>
        until(
          'the import',
          async () => {
            const r = await guest().exec(['/usr/bin/ecluse', '--home', '/var/lib/ecluse', 'status', '--json']);
            if (r.code !== 0) return null;
            const s = (JSON.parse(r.stdout) as { status: { last: { outcome: string; bundle: string } | null } }).status;
            return s.last?.bundle === bundleId ? s : null;
          },
          10 * MINUTE,
        ),
      );
      expect(status.last).toMatchObject({ outcome: 'accepted', bundle: bundleId });

      const images = await guest().exec([
        '/usr/bin/node',
        '-e',
        'fetch("http://127.0.0.1:9292/v2/images").then((r) => r.text()).then((t) => process.stdout.write(t))',
      ]);
      const list = JSON.parse(images.stdout) as { images: Array<{ name: string; status: string; size: number }> };
      expect(list.images).toEqual([
        expect.objectContaining({ name: 'debian', status: 'active', size: 3 * 1024 * 1024 + 5 }),
      ]);

      const journal = await guest().sh('journalctl -u ecluse-daemon -o json --no-pager');
      const entries = journal.stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, string>);
      const accepted = entries.find((e) => e.ECLUSE_EVENT === 'import.accepted');
      expect(accepted).toMatchObject({ ECLUSE_BUNDLE: bundleId, SYSLOG_IDENTIFIER: 'ecluse', PRIORITY: '6' });
      expect(entries.find((e) => e.ECLUSE_EVENT === 'image.promoted')).toMatchObject({
        ECLUSE_ARTIFACT: 'debian@13.1',
      });
      const admitted = entries.find((e) => e.ECLUSE_EVENT === 'media.accepted' && e.ECLUSE_MEDIA?.includes('sdb1'));
      expect(admitted?.ECLUSE_IDENTITY).toContain('ECLUSE0007');
      await ecluseOk(['--version']);
    },
    15 * MINUTE,
  );
});
