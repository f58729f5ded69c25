/**
 * The systemd units as installed by `ecluse install-units --root DIR`: `systemd-analyze verify` accepts them, and
 * `systemd-analyze security --offline=yes` scores the daemon at most 2.0 (SAFE). Skipped only when systemd-analyze
 * is not installed.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ecluseOk, tmpDir } from '../helpers/world.js';

function analyze(args: string[]): { code: number; out: string } {
  try {
    const out = execFileSync('systemd-analyze', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return { code: 0, out };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { code: err.status ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

let hasAnalyze = true;
try {
  execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
} catch {
  hasAnalyze = false;
  console.warn('systemd unit tests skipped: systemd-analyze is not installed (apt-get install systemd)');
}

describe.skipIf(!hasAnalyze)('systemd units (install-units)', () => {
  const root = tmpDir('ecluse-units-');
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('installs every file, verify accepts the units, and the daemon scores SAFE (<= 2.0)', async () => {
    const r = await ecluseOk(['install-units', '--root', root, '--bin', CLI, '--json']);
    const files = (r.json as { files: Array<{ path: string }> }).files.map((f) => path.relative(root, f.path)).sort();
    expect(files).toEqual([
      'usr/lib/systemd/system/ecluse-daemon.service',
      'usr/lib/systemd/system/ecluse-serve.service',
      'usr/lib/systemd/system/ecluse-update.path',
      'usr/lib/systemd/system/ecluse-update.service',
      'usr/lib/sysusers.d/ecluse.conf',
      'usr/lib/tmpfiles.d/ecluse.conf',
      'usr/lib/udev/rules.d/90-ecluse-media.rules',
      'usr/libexec/ecluse/ecluse-mount',
      'usr/libexec/ecluse/ecluse-update',
    ]);
    expect(fs.statSync(path.join(root, 'usr/libexec/ecluse/ecluse-mount')).mode & 0o777).toBe(0o755);
    expect(fs.statSync(path.join(root, 'usr/libexec/ecluse/ecluse-update')).mode & 0o777).toBe(0o755);
    // Self-update: the path unit watches the spool the daemon hands packages over in; enabled by the package.
    const updatePath = fs.readFileSync(path.join(root, 'usr/lib/systemd/system/ecluse-update.path'), 'utf8');
    expect(updatePath).toMatch(/^PathExistsGlob=\/var\/lib\/ecluse-update\/incoming\/\*\.deb$/m);
    expect(updatePath).toMatch(/^Unit=ecluse-update\.service$/m);
    expect(updatePath).toMatch(/^WantedBy=paths\.target$/m);
    // The installer's unit is not skipped without current.deb (the path unit would trigger it in a loop): it refuses.
    const updateService = fs.readFileSync(path.join(root, 'usr/lib/systemd/system/ecluse-update.service'), 'utf8');
    expect(updateService).not.toMatch(/^ConditionPathExists=/m);
    const units = path.join(root, 'usr/lib/systemd/system');
    const daemonUnit = fs.readFileSync(path.join(units, 'ecluse-daemon.service'), 'utf8');
    expect(daemonUnit).toContain('Type=notify');
    expect(daemonUnit).toMatch(/^NotifyAccess=main$/m);
    expect(daemonUnit).toMatch(/^WatchdogSec=/m);
    expect(daemonUnit).toContain(`ExecStart=${CLI} --home /var/lib/ecluse daemon`);
    const mount = fs.readFileSync(path.join(root, 'usr/libexec/ecluse/ecluse-mount'), 'utf8');
    expect(mount).toContain('systemd-mount --no-block --automount=no --fsck=no --collect');
    expect(mount).toContain('ro,nosuid,nodev,noexec,noatime');

    const verify = analyze([
      'verify',
      path.join(units, 'ecluse-daemon.service'),
      path.join(units, 'ecluse-serve.service'),
    ]);
    expect(verify, verify.out).toMatchObject({ code: 0 });

    for (const [unit, limit] of [
      ['ecluse-daemon.service', 2.0],
      ['ecluse-serve.service', 2.5],
    ] as const) {
      const sec = analyze(['security', '--offline=yes', `--root=${root}`, '--no-pager', unit]);
      const score = /Overall exposure level for \S+: ([0-9.]+)/.exec(sec.out)?.[1];
      expect(score, sec.out).toBeDefined();
      expect(Number(score), `${unit}:\n${sec.out}`).toBeLessThanOrEqual(limit);
    }
    const threshold = analyze([
      'security',
      '--offline=yes',
      `--root=${root}`,
      '--threshold=20',
      '--no-pager',
      'ecluse-daemon.service',
    ]);
    expect(threshold.code, threshold.out).toBe(0);
  });
});
