/**
 * The two servers the conformance suite compares: the reference Glance (started by ../shared/peers/real-glance.sh)
 * and `ecluse serve` (the built CLI) on a fresh import station. Both on loopback, on free ports.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { CLI, PASSPHRASE, REPO } from '../helpers/world.js';

const run = promisify(execFile);
export const REAL_GLANCE_SCRIPT = path.resolve(REPO, '..', 'shared', 'peers', 'real-glance.sh');

export interface Peer {
  name: 'glance' | 'ecluse';
  url: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startRealGlance(dir: string): Promise<Peer> {
  if (!fs.existsSync(REAL_GLANCE_SCRIPT)) throw new Error(`${REAL_GLANCE_SCRIPT} is missing`);
  const port = await freePort();
  const { stdout } = await run('bash', [REAL_GLANCE_SCRIPT, 'start', dir, String(port)], { timeout: 120_000 });
  const url = stdout.trim().split('\n').pop() ?? `http://127.0.0.1:${port}`;
  return {
    name: 'glance',
    url,
    stop: async () => {
      await run('bash', [REAL_GLANCE_SCRIPT, 'stop', dir]).catch(() => undefined);
    },
  };
}

async function waitFor(url: string, child: ChildProcess, log: () => string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ecluse serve exited ${child.exitCode}: ${log()}`);
    try {
      // any answer will do (beyond loopback, that is a 401 without a token)
      if ((await fetch(url)).status < 500) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`ecluse serve did not answer on ${url} within ${ms} ms: ${log()}`);
}

/** `ecluse serve` on the import station `home` (already set up with `site init`). */
export async function startEcluseServe(
  home: string,
  env: Record<string, string> = {},
  host = '127.0.0.1',
): Promise<Peer & { log: () => string }> {
  const port = await freePort();
  const url = `http://${host}:${port}`;
  let log = '';
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', `${host}:${port}`], {
    env: { ...process.env, ECLUSE_HOME: home, ECLUSE_PASSPHRASE: PASSPHRASE, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  await waitFor(`${url}/versions`, child, () => log);
  return {
    name: 'ecluse',
    url,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * A clean environment for the Python clients: no OS_* from the developer's shell, and a HOME of the test's own
 * (glanceclient caches schemas under ~/.glanceclient and reads them back on the next run).
 */
export function clientEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OS_')) env[k] = v;
  env.HOME = home;
  return env;
}

/**
 * Runs a client command with stdin closed (openstackclient reads image data from a non-terminal stdin even when
 * --file is given), returning stdout; rejects with the exit status and stderr.
 */
export function runClient(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code ?? signal}: ${err.trim()} ${out.trim()}`));
    });
  });
}
