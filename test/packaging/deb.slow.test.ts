/**
 * The offline install artifact: `packaging/build-deb.sh` (what `npm run package` runs, here on the dist/ the test run
 * built) makes ecluse_<version>_<arch>.deb. Its metadata and contents are read back with `dpkg-deb -I/-c`; it is
 * unpacked with `dpkg-deb -x` and the unpacked `ecluse` sets up a station (the native addons load from the package,
 * and so does every package the bundle leaves outside); it ships the bundle and, in node_modules, exactly those
 * packages and what they depend on (scripts/runtime-deps.ts);
 * then it is installed and purged with the real dpkg into a throwaway root (`dpkg --root`, maintainer scripts run
 * chrootless with DPKG_ROOT: the user, the folders and the enabled units land in that tree, never on this machine).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ecluseOk, makeKeys, PASSPHRASE, REPO, tmpDir } from '../helpers/world.js';
import { which } from '../helpers/media.js';
import { RUNTIME_PACKAGES } from '../../scripts/bundle.js';
import { runtimeClosure } from '../../scripts/runtime-deps.js';

const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
  version: string;
  devDependencies: Record<string, string>;
};
const isRoot = process.getuid?.() === 0;
const skip = !which('dpkg-deb')
  ? 'dpkg-deb is missing'
  : !which('npm')
    ? 'npm is missing'
    : !isRoot
      ? 'dpkg --root needs root (CI runs as root)'
      : null;
if (skip) console.warn(`package tests skipped: ${skip}`);

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env, maxBuffer: 64 << 20 });

describe.skipIf(skip !== null)('the .deb (npm run package)', () => {
  const dir = tmpDir('ecluse-deb-');
  let deb = '';
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  beforeAll(() => {
    const out = run('bash', [
      path.join(REPO, 'packaging', 'build-deb.sh'),
      '--no-build',
      '--out',
      path.join(dir, 'out'),
    ]);
    deb = out.trim().split('\n').pop() ?? '';
  }, 600_000);

  it('is named and described for Debian, depends on Node 20 and carries its maintainer scripts', () => {
    const arch = run('dpkg', ['--print-architecture']).trim();
    expect(path.basename(deb)).toBe(`ecluse_${pkg.version}_${arch}.deb`);
    const field = (f: string) => run('dpkg-deb', ['-f', deb, f]).trim();
    expect(field('Package')).toBe('ecluse');
    expect(field('Version')).toBe(pkg.version);
    expect(field('Architecture')).toBe(arch);
    expect(field('Depends')).toContain('nodejs (>= 20.19), nodejs (<< 21)');
    expect(Number(field('Installed-Size'))).toBeGreaterThan(1000);
    const info = run('dpkg-deb', ['-I', deb]);
    for (const s of ['postinst', 'prerm', 'postrm'])
      expect(info).toMatch(new RegExp(`\\d+ bytes, +\\d+ lines +\\* +${s}`));
  });

  it('holds the bundled program, its runtime packages only, the units, the udev rule, the mount helper and the snippets', () => {
    const lines = run('dpkg-deb', ['-c', deb])
      .split('\n')
      .filter((l) => l.trim() !== '');
    const entries = new Map<string, string>();
    for (const l of lines) {
      const m = /^(\S+) (\S+) .* \.\/(\S*?)(?: -> (\S+))?$/.exec(l);
      if (!m) throw new Error(`unparsed dpkg-deb -c line: ${l}`);
      expect(m[2], l).toBe('root/root');
      entries.set(`/${m[3]}`, `${m[1]}${m[4] ? ` -> ${m[4]}` : ''}`);
    }
    expect(entries.get('/usr/bin/ecluse')).toBe('lrwxrwxrwx -> ../lib/ecluse/dist/ecluse/main.js');
    expect(entries.get('/usr/lib/ecluse/dist/ecluse/main.js')).toBe('-rwxr-xr-x');
    expect(entries.get('/usr/libexec/ecluse/ecluse-mount')).toBe('-rwxr-xr-x');
    expect(entries.get('/usr/libexec/ecluse/ecluse-update')).toBe('-rwxr-xr-x');
    for (const f of [
      '/usr/lib/systemd/system/ecluse-daemon.service',
      '/usr/lib/systemd/system/ecluse-serve.service',
      '/usr/lib/systemd/system/ecluse-update.path',
      '/usr/lib/systemd/system/ecluse-update.service',
      '/usr/lib/udev/rules.d/90-ecluse-media.rules',
      '/usr/lib/sysusers.d/ecluse.conf',
      '/usr/lib/tmpfiles.d/ecluse.conf',
      '/usr/lib/ecluse/package.json',
      '/usr/lib/ecluse/systemd/ecluse-daemon.service',
      '/usr/share/doc/ecluse/copyright',
    ]) {
      expect(entries.get(f), f).toBe('-rw-r--r--');
    }
    for (const f of ['better-sqlite3/build/Release/better_sqlite3.node', 'unix-dgram/build/Release/unix_dgram.node']) {
      expect(entries.get(`/usr/lib/ecluse/node_modules/${f}`), f).toMatch(/^-rw[-x]r-[-x]r-[-x]$/);
    }
    const names = [...entries.keys()];
    // node_modules holds the packages the bundle loads at run time and their dependencies, nothing else: the same
    // closure as read from this checkout's installed tree (the same lock).
    const lib = '/usr/lib/ecluse/';
    const shipped = new Set<string>();
    for (const n of names) {
      if (!n.startsWith(`${lib}node_modules/`)) continue;
      const m = /^((?:node_modules\/(?:@[^/]+\/)?[^@/.][^/]*(?:\/|$))+)/.exec(n.slice(lib.length));
      if (m?.[1]) shipped.add(m[1].replace(/\/$/, ''));
    }
    const closure = [...runtimeClosure(REPO)].map((d) => path.relative(REPO, d).split(path.sep).join('/'));
    expect([...shipped].sort()).toEqual(closure.sort());
    for (const p of RUNTIME_PACKAGES) expect(shipped.has(`node_modules/${p}`), p).toBe(true);
    for (const bundled of ['express', 'zod', '@sigstore', 'commander', 'helmet', 'chokidar', 'asn1js']) {
      expect(
        names.filter((n) => n.startsWith(`${lib}node_modules/${bundled}/`)),
        bundled,
      ).toEqual([]);
    }
    expect(names.filter((n) => n.startsWith(`${lib}node_modules/.bin/`))).toEqual([]);
    // The program is the bundle alone: no tsc output beside it.
    expect(
      names.filter((n) => n.startsWith(`${lib}dist/`) && !n.startsWith(`${lib}dist/ecluse/`) && n !== `${lib}dist/`),
    ).toEqual([]);
    expect(names.filter((n) => n.startsWith(`${lib}dist/cli/`))).toEqual([]);
    const top = new Set(
      names.filter((n) => n.startsWith(lib) && n !== lib).map((n) => n.slice(lib.length).split('/')[0]),
    );
    expect([...top].sort()).toEqual(['dist', 'node_modules', 'package.json', 'systemd']);
    for (const dev of Object.keys(pkg.devDependencies)) {
      expect(
        names.filter((n) => n.startsWith(`/usr/lib/ecluse/node_modules/${dev}/`)),
        dev,
      ).toEqual([]);
    }
    expect(
      names.filter((n) => n.startsWith('/usr/lib/ecluse/dist/') && (n.endsWith('.map') || n.includes('/bench/'))),
    ).toEqual([]);
    // Build leftovers of the native addons (object files, static libraries) are not shipped.
    expect(names.filter((n) => /\.(o|a)$/.test(n))).toEqual([]);
    expect(names.filter((n) => !n.startsWith('/usr/') && n !== '/')).toEqual([]);
  });

  it('unpacked, its ecluse says the version of the build and sets up a station (native addons load)', async () => {
    const root = path.join(dir, 'unpacked');
    run('dpkg-deb', ['-x', deb, root]);
    const bin = path.join(root, 'usr', 'bin', 'ecluse');
    const version = run(bin, ['--version']).trim();
    expect(version).toBe(pkg.version);
    // The shipped package.json makes dist/ecluse/*.js ES modules; every runtime package loads from the package alone.
    const lib = path.join(root, 'usr', 'lib', 'ecluse');
    expect(JSON.parse(fs.readFileSync(path.join(lib, 'package.json'), 'utf8'))).toMatchObject({
      version: pkg.version,
      type: 'module',
    });
    const loaded = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        'for (const p of JSON.parse(process.env.PKGS)) await import(p); console.log("loaded");',
      ],
      { cwd: lib, encoding: 'utf8', env: { ...process.env, PKGS: JSON.stringify(RUNTIME_PACKAGES) } },
    );
    expect(loaded.trim()).toBe('loaded');
    expect(version).toBe(run(process.execPath, [CLI, '--version']).trim());
    const keys = await makeKeys(path.join(dir, 'keys'), ['alice']);
    const home = path.join(dir, 'home');
    const out = run(bin, ['--home', home, 'site', 'init', '--trust', keys.trust, '--site', 'deb-1', '--json'], {
      ...process.env,
      ECLUSE_PASSPHRASE: PASSPHRASE,
      // site init run as root pins the self-update anchors: beside this home, not in the machine's /etc.
      ECLUSE_SELF_UPDATE_ANCHORS: `${home}.self-update`,
    });
    expect(JSON.parse(out)).toMatchObject({ ok: true });
    const status = await ecluseOk(['status', '--json'], { home });
    expect(status.json).toMatchObject({ ok: true, status: { state: 'stopped' } });
  });

  it('installs with dpkg into a throwaway root: user, folders and enabled units; purge removes all but the state', () => {
    const root = path.join(dir, 'root');
    for (const d of ['var/lib/dpkg/updates', 'var/lib/dpkg/info', 'etc', 'var/log']) {
      fs.mkdirSync(path.join(root, d), { recursive: true });
    }
    fs.writeFileSync(path.join(root, 'var/lib/dpkg/status'), '');
    fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\n');
    const dpkg = (...args: string[]) =>
      run('dpkg', [`--root=${root}`, '--force-script-chrootless', '--force-depends', '--log=/dev/null', ...args]);
    const installed = dpkg('-i', deb);
    expect(installed).toContain('ecluse: set the station up');
    expect(fs.readFileSync(path.join(root, 'etc/passwd'), 'utf8')).toMatch(/^ecluse:x:\d+:\d+:.*:\/var\/lib\/ecluse:/m);
    expect(fs.readFileSync(path.join(root, 'etc/group'), 'utf8')).toMatch(/^ecluse:x:\d+:/m);
    const state = fs.statSync(path.join(root, 'var/lib/ecluse'));
    expect(state.mode & 0o777).toBe(0o700);
    const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants');
    expect(fs.readdirSync(wants).sort()).toEqual(['ecluse-daemon.service', 'ecluse-serve.service']);
    // Self-update is on as shipped: the path unit is enabled, the installer's results folder readable by ecluse only.
    const paths = path.join(root, 'etc/systemd/system/paths.target.wants');
    expect(fs.readdirSync(paths)).toEqual(['ecluse-update.path']);
    expect(fs.statSync(path.join(root, 'var/lib/ecluse-update/results')).mode & 0o777).toBe(0o750);
    expect(fs.statSync(path.join(root, 'var/lib/ecluse-update/installing')).mode & 0o777).toBe(0o700);
    expect(run(path.join(root, 'usr/bin/ecluse'), ['--version']).trim()).toBe(pkg.version);
    expect(dpkg('-s', 'ecluse')).toMatch(/^Status: install ok installed$/m);

    fs.writeFileSync(path.join(root, 'var/lib/ecluse/audit-evidence'), 'kept');
    const purged = dpkg('--purge', 'ecluse');
    expect(purged).toContain('kept /var/lib/ecluse');
    expect(fs.existsSync(path.join(root, 'usr/lib/ecluse'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'usr/bin/ecluse'))).toBe(false);
    expect(fs.existsSync(path.join(root, 'usr/lib/systemd/system/ecluse-daemon.service'))).toBe(false);
    expect(fs.existsSync(path.join(wants, 'ecluse-daemon.service'))).toBe(false);
    expect(fs.existsSync(path.join(paths, 'ecluse-update.path'))).toBe(false);
    expect(fs.readFileSync(path.join(root, 'var/lib/ecluse/audit-evidence'), 'utf8')).toBe('kept');
  });
});
