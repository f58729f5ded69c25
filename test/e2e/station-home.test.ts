/**
 * Issue 14: a station home the command's user may not use is one clear line naming the folder, the user and what to
 * do (E_IO, exit 3), on both stations, never the bare errno (`E_IO: EACCES: permission denied, mkdir ...`). Root
 * ignores folder modes, so the commands run as `nobody` (setpriv) against folders only root may write.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, REPO } from '../helpers/world.js';

const execFileP = promisify(execFile);
let root: string;

beforeAll(() => {
  // Under /tmp (world-traversable), not a private temporary folder nobody could not even reach.
  root = fs.mkdtempSync('/tmp/ecluse-home-perm-');
  fs.chmodSync(root, 0o755);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Runs the CLI as nobody; returns exit status and stderr. */
async function asNobody(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  try {
    const r = await execFileP(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, CLI, ...args],
      { cwd: REPO, env: { ...process.env, HOME: root, ECLUSE_HOME: '' } },
    );
    return { code: 0, stderr: r.stderr, stdout: r.stdout };
  } catch (e) {
    const err = e as { code: number; stderr: string; stdout: string };
    return { code: err.code, stderr: err.stderr, stdout: err.stdout };
  }
}

const lastLine = (stderr: string) => stderr.trimEnd().split('\n').pop() ?? '';

describe('a station home this user may not write', () => {
  it('export station: an existing home owned by root (0755) is E_IO naming the folder and user, exit 3', async () => {
    const home = path.join(root, 'relay-home');
    fs.mkdirSync(home, { mode: 0o755 });
    const r = await asNobody(['--home', home, 'relay', 'list']);
    expect(r.code).toBe(3);
    expect(lastLine(r.stderr)).toBe(
      `E_IO: cannot use the station home ${home}: permission denied for user nobody on ${home}/blobs/sha256; run as the user that owns it, give that user write access to it, or choose another folder with --home`,
    );
    expect(r.stderr).not.toMatch(/EACCES/);
  });

  it('export station: a home to be made in a folder nobody may write is E_IO too, nothing is created', async () => {
    const parent = path.join(root, 'locked');
    fs.mkdirSync(parent, { mode: 0o755 });
    const home = path.join(parent, 'new-home');
    const r = await asNobody(['--home', home, 'relay', 'add', '/etc/hostname', '--name', 'x', '--version', '1']);
    expect(r.code).toBe(3);
    expect(lastLine(r.stderr)).toMatch(
      new RegExp(`^E_IO: cannot use the station home ${home}: permission denied for user nobody on `),
    );
    expect(fs.existsSync(home)).toBe(false);
  });

  it('export station: a catalog file this user may not write is E_DATABASE naming the file and the user', async () => {
    const home = path.join(root, 'relay-db');
    fs.mkdirSync(path.join(home, 'blobs', 'sha256'), { recursive: true, mode: 0o777 });
    fs.chmodSync(home, 0o777);
    fs.chmodSync(path.join(home, 'blobs'), 0o777);
    fs.chmodSync(path.join(home, 'blobs', 'sha256'), 0o777);
    fs.writeFileSync(path.join(home, 'relay.sqlite'), '', { mode: 0o600 });
    const r = await asNobody(['--home', home, 'relay', 'list']);
    expect(r.code).toBe(3);
    expect(lastLine(r.stderr)).toMatch(
      new RegExp(
        `^E_DATABASE: cannot open ${home}/relay.sqlite \\(.*\\) as user nobody: run as the user that owns it, or let that user read and write it and its folder$`,
      ),
    );
  });

  it('import station: status on a home this user may not read fails (E_IO, exit 3), it does not say "stopped"', async () => {
    const home = path.join(root, 'private-home');
    fs.mkdirSync(home, { mode: 0o700 });
    const r = await asNobody(['--home', home, 'status']);
    expect(r.code).toBe(3);
    expect(lastLine(r.stderr)).toBe(
      `E_IO: cannot use the station home ${home}: permission denied for user nobody on ${home}; run as the user that owns it, give that user write access to it, or choose another folder with --home`,
    );
    expect(r.stdout).not.toMatch(/stopped/);
  });

  it('import station: site init in a home owned by root is the same line (E_IO, exit 3)', async () => {
    const home = path.join(root, 'import-home');
    fs.mkdirSync(home, { mode: 0o755 });
    fs.mkdirSync(path.join(root, 'trust'), { mode: 0o755 });
    const r = await asNobody([
      '--home',
      path.join(home, 'sub'),
      'site',
      'init',
      '--trust',
      path.join(root, 'trust'),
      '--site',
      's',
    ]);
    expect(r.code).toBe(3);
    expect(lastLine(r.stderr)).toMatch(
      new RegExp(`^E_IO: cannot use the station home ${home}/sub: permission denied for user nobody on ${home}/sub; `),
    );
  });
});
