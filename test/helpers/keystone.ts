/**
 * The real Keystone (Debian's `keystone` package) on loopback, as a peer for the outside-Glance feed: its own SQLite
 * database, Fernet keys and config in a temporary folder, bootstrapped with an admin, and served by the package's
 * `keystone-wsgi-public`. Every request it serves is in `log()` (the WSGI server's access log).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../conformance/peers.js';

const run = promisify(execFile);

export const KEYSTONE_MANAGE = '/usr/bin/keystone-manage';
export const haveKeystone = (): boolean => fs.existsSync(KEYSTONE_MANAGE);

export interface KeystonePeer {
  /** The v3 URL (OS_AUTH_URL). */
  url: string;
  /** Environment for the openstack client, as the bootstrap admin (password auth, admin project). */
  adminEnv: NodeJS.ProcessEnv;
  log(): string;
  stop(): Promise<void>;
}

/** Starts Keystone in `dir`; tokens live `tokenSeconds` (Keystone's own default is an hour). */
export async function startKeystone(dir: string, tokenSeconds = 3600): Promise<KeystonePeer> {
  fs.mkdirSync(path.join(dir, 'fernet'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'credential'), { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/v3`;
  const conf = path.join(dir, 'keystone.conf');
  fs.writeFileSync(
    conf,
    [
      '[DEFAULT]',
      `log_dir = ${dir}`,
      '[database]',
      `connection = sqlite:///${path.join(dir, 'keystone.db')}`,
      '[token]',
      'provider = fernet',
      `expiration = ${tokenSeconds}`,
      '[fernet_tokens]',
      `key_repository = ${path.join(dir, 'fernet')}`,
      '[fernet_receipts]',
      `key_repository = ${path.join(dir, 'fernet')}`,
      '[credential]',
      `key_repository = ${path.join(dir, 'credential')}`,
      '',
    ].join('\n'),
  );
  const manage = (...args: string[]) => run(KEYSTONE_MANAGE, ['--config-file', conf, ...args], { timeout: 120_000 });
  const user = ['--keystone-user', 'root', '--keystone-group', 'root'];
  await manage('db_sync');
  await manage('fernet_setup', ...user);
  await manage('credential_setup', ...user);
  await manage(
    'bootstrap',
    '--bootstrap-password',
    'keystone-admin',
    '--bootstrap-public-url',
    url,
    '--bootstrap-region-id',
    'RegionOne',
  );
  let log = '';
  const child: ChildProcess = spawn(
    '/usr/bin/keystone-wsgi-public',
    ['--host', '127.0.0.1', '--port', String(port), '--', '--config-file', conf],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OS_KEYSTONE_CONFIG_FILES: conf } },
  );
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`keystone exited ${child.exitCode}: ${log}`);
    try {
      if ((await fetch(url)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`keystone did not answer on ${url}: ${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    adminEnv: {
      ...process.env,
      OS_AUTH_URL: url,
      OS_AUTH_TYPE: 'password',
      OS_USERNAME: 'admin',
      OS_PASSWORD: 'keystone-admin',
      OS_PROJECT_NAME: 'admin',
      OS_USER_DOMAIN_NAME: 'Default',
      OS_PROJECT_DOMAIN_NAME: 'Default',
      OS_IDENTITY_API_VERSION: '3',
      OS_REGION_NAME: 'RegionOne',
    },
    log: () => log,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 200));
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}
