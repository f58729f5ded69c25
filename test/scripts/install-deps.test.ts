/**
 * scripts/install-deps.sh elevates itself only when it must: as root it installs directly (a fresh Debian has no
 * sudo), as another user it re-runs itself through sudo when sudo exists, and otherwise says to run it as root. The
 * real script runs; what it would install is made missing by a PATH holding only the tools the script itself needs,
 * and apt-get and sudo are stand-ins that record their arguments (installing packages here is not the point).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const execFileP = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../scripts/install-deps.sh', import.meta.url));
let dir: string;

function tools(name: string, withSudo: boolean): string {
  const bin = path.join(dir, name);
  fs.mkdirSync(bin);
  for (const t of ['bash', 'id', 'cat', 'env']) fs.symlinkSync(fs.realpathSync(`/usr/bin/${t}`), path.join(bin, t));
  const log = path.join(dir, `${name}.log`);
  const recorder = (what: string) => `#!/usr/bin/bash\necho "${what} $*" >> ${log}\n`;
  fs.writeFileSync(path.join(bin, 'apt-get'), recorder('apt-get'), { mode: 0o755 });
  if (withSudo) fs.writeFileSync(path.join(bin, 'sudo'), recorder('sudo'), { mode: 0o755 });
  return bin;
}

async function run(bin: string, asNobody: boolean): Promise<{ code: number; stderr: string }> {
  const argv = ['/usr/bin/bash', SCRIPT, 'demo'];
  const cmd = asNobody ? ['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...argv] : argv;
  try {
    const r = await execFileP(cmd[0] as string, cmd.slice(1), { env: { PATH: bin } });
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stderr: string };
    return { code: err.code, stderr: err.stderr };
  }
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-deps-'));
  fs.chmodSync(dir, 0o777); // the stand-ins write their logs here, also as nobody
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('install-deps.sh', () => {
  it.runIf(process.getuid?.() === 0)('as root, installs directly: no sudo needed (none installed)', async () => {
    const bin = tools('root', false);
    const r = await run(bin, false);
    expect(r.code, r.stderr).toBe(0);
    const log = fs.readFileSync(path.join(dir, 'root.log'), 'utf8');
    expect(log).toContain('apt-get install -y -qq python3-openstackclient python3-glanceclient qemu-utils curl');
  });

  it.runIf(process.getuid?.() === 0)('as another user with sudo: re-runs itself through sudo', async () => {
    const bin = tools('user-sudo', true);
    const r = await run(bin, true);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('installing them through sudo');
    expect(fs.readFileSync(path.join(dir, 'user-sudo.log'), 'utf8').trim()).toBe(`sudo -- ${SCRIPT} demo`);
  });

  it.runIf(process.getuid?.() === 0)('as another user without sudo: says to run it as root, exit 1', async () => {
    const bin = tools('user-plain', false);
    const r = await run(bin, true);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(
      `install-deps: missing python3-openstackclient python3-glanceclient qemu-utils curl; run this script as root (su -c '${SCRIPT} demo'), or install sudo`,
    );
    expect(fs.existsSync(path.join(dir, 'user-plain.log'))).toBe(false);
  });
});
