/**
 * The privileged half of self-update (systemd/ecluse-update), run here for the checks it makes before it touches
 * dpkg or systemd: a hand-off that is not whole, something that is not an ecluse package, a package no newer than
 * the one installed, no previous package to roll back to. Each is refused, moved to refused/, and said in one line.
 * Installing, waiting for READY and rolling back need systemd as PID 1: test/packaging/appliance.slow.test.ts.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { which } from '../helpers/media.js';
import { REPO, tmpDir } from '../helpers/world.js';

const SCRIPT = path.join(REPO, 'systemd', 'ecluse-update');
const skip = which('dpkg-deb') ? null : 'dpkg-deb is missing';

/** A package with only a control file: enough for dpkg-deb -f. */
function tinyDeb(dir: string, pkg: string, version: string): string {
  const root = path.join(dir, `${pkg}-${version}`);
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'DEBIAN', 'control'),
    `Package: ${pkg}\nVersion: ${version}\nArchitecture: all\nMaintainer: t <t@localhost>\nDescription: t\n`,
  );
  const out = path.join(dir, `${pkg}_${version}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '--build', root, out], { stdio: 'ignore' });
  return out;
}

describe.skipIf(skip !== null)('ecluse-update (the privileged installer) refuses before installing', () => {
  const dir = tmpDir('ecluse-update-');
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function handOver(file: string, name?: string): { spool: string; name: string } {
    const spool = fs.mkdtempSync(path.join(dir, 'spool-'));
    fs.mkdirSync(path.join(spool, 'incoming'));
    const n = name ?? createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    fs.copyFileSync(file, path.join(spool, 'incoming', `${n}.deb`));
    return { spool, name: n };
  }
  function run(spool: string) {
    return spawnSync('sh', [SCRIPT], { env: { ...process.env, ECLUSE_UPDATE_SPOOL: spool }, encoding: 'utf8' });
  }
  function expectRefused(spool: string, name: string, line: RegExp): void {
    const r = run(spool);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(line);
    expect(fs.readdirSync(path.join(spool, 'incoming'))).toEqual([]);
    expect(fs.readdirSync(path.join(spool, 'refused'))).toEqual([`${name}.deb`]);
  }

  it('refuses a hand-off whose sha256 is not its name (not whole)', () => {
    const deb = tinyDeb(dir, 'ecluse', '9.0.0');
    const { spool, name } = handOver(deb, 'a'.repeat(64));
    expectRefused(
      spool,
      name,
      /^ecluse-update: a{64}\.deb is not whole \(its sha256 is [0-9a-f]{64}\); the package was moved to .*\/refused\/$/m,
    );
  });

  it('refuses a package that is not ecluse', () => {
    const { spool, name } = handOver(tinyDeb(dir, 'notecluse', '9.0.0'));
    expectRefused(spool, name, /is not an ecluse package; the package was moved to/);
  });

  it('refuses a file that is not a package at all', () => {
    const junk = path.join(dir, 'junk.deb');
    fs.writeFileSync(junk, 'not a deb');
    const { spool, name } = handOver(junk);
    expectRefused(spool, name, /is not an ecluse package/);
  });

  it('refuses to install without a copy of the installed package to roll back to', () => {
    const { spool, name } = handOver(tinyDeb(dir, 'ecluse', '9.1.0'));
    expectRefused(
      spool,
      name,
      /no copy of the installed ecluse .* to roll back to: put its \.deb at .*\/current\.deb and retry/,
    );
  });

  it('says so when the spool is empty', () => {
    const spool = fs.mkdtempSync(path.join(dir, 'spool-'));
    const r = run(spool);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^ecluse-update: no package in .*\/incoming$/m);
  });
});
