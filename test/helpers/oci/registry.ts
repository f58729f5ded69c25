/**
 * Debian's `docker-registry` (CNCF distribution 2.8) on a free loopback port, as a vendor's registry or a site's own:
 * its own config file in a private folder, filesystem storage there, and either htpasswd basic auth (`htpasswd -B`),
 * bearer tokens from a small token server of the test's (the registry's `token` auth: RS256 JWTs whose x5c header
 * chains to a certificate the registry pins), or no auth. `stop()` ends the process (SIGTERM, then SIGKILL) and
 * deletes the folder: nothing is left behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { freePort } from '../../conformance/peers.js';
import { containersAuthFile, tool } from './tools.js';

export type RegistryAuth = 'basic' | 'bearer' | 'none';

export interface Registry {
  /** `127.0.0.1:PORT`, as image references and auth files name it. */
  host: string;
  url: string;
  auth: RegistryAuth;
  username: string;
  password: string;
  /** A containers auth file with this registry's credentials (`--authfile`, `--src-authfile`, `--dest-authfile`). */
  authFile: string;
  /** The private folder (config, htpasswd, storage, log). */
  dir: string;
  /** What the registry printed (for failure messages). */
  log(): string;
  /** Bearer auth only: the token requests the token server saw (scope and whether the credentials were right). */
  tokenRequests: { scope: string; authorized: boolean }[];
  /** GET/HEAD `path` with this registry's credentials (basic, or a bearer token for `scope`). */
  fetch(p: string, init?: RequestInit & { scope?: string }): Promise<Response>;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  auth?: RegistryAuth;
  username?: string;
  password?: string;
}

async function waitForRegistry(url: string, child: ChildProcess, log: () => string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${log()}`);
    try {
      const res = await fetch(`${url}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer on ${url} within ${ms} ms: ${log()}`);
}

const b64url = (b: Buffer | string) => Buffer.from(b).toString('base64url');

/** A self-signed certificate for the token signer (openssl, as the registry docs do it). */
async function tokenSigner(dir: string): Promise<{ key: crypto.KeyObject; certDer: Buffer; certFile: string }> {
  const keyFile = path.join(dir, 'token-key.pem');
  const certFile = path.join(dir, 'token-cert.pem');
  await tool('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    keyFile,
    '-out',
    certFile,
    '-days',
    '2',
    '-subj',
    '/CN=ecluse-test-token-issuer',
  ]);
  const cert = new crypto.X509Certificate(fs.readFileSync(certFile));
  return { key: crypto.createPrivateKey(fs.readFileSync(keyFile)), certDer: cert.raw, certFile };
}

/** The token server of the distribution token spec: GET ?service=&scope= with basic credentials → {token}. */
async function startTokenServer(o: {
  key: crypto.KeyObject;
  certDer: Buffer;
  username: string;
  password: string;
  requests: Registry['tokenRequests'];
}): Promise<{ url: string; close(): Promise<void> }> {
  const expected = `Basic ${Buffer.from(`${o.username}:${o.password}`).toString('base64')}`;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://token');
    const scopes = u.searchParams.getAll('scope');
    const authorized = req.headers.authorization === expected;
    o.requests.push({ scope: scopes.join(' '), authorized });
    if (!authorized) {
      res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.flatMap((s) => {
      const m = /^repository:([^:]+):(.+)$/.exec(s);
      return m ? [{ type: 'repository', name: m[1], actions: (m[2] as string).split(',') }] : [];
    });
    const header = { typ: 'JWT', alg: 'RS256', x5c: [o.certDer.toString('base64')] };
    const claims = {
      iss: 'ecluse-test-issuer',
      sub: o.username,
      aud: u.searchParams.get('service') ?? '',
      exp: now + 300,
      nbf: now - 10,
      iat: now,
      jti: crypto.randomUUID(),
      access,
    };
    const signing = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${signing}.${b64url(crypto.sign('sha256', Buffer.from(signing), o.key))}`;
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Starts a registry in the new folder `dir` (made here, deleted by `stop()`). */
export async function startRegistry(dir: string, o: RegistryOptions = {}): Promise<Registry> {
  const auth = o.auth ?? 'basic';
  const username = o.username ?? 'vendor';
  const password = o.password ?? crypto.randomBytes(12).toString('hex');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tokenRequests: Registry['tokenRequests'] = [];
  let token: { url: string; close(): Promise<void> } | undefined;
  let authConfig = '';
  if (auth === 'basic') {
    const { stdout } = await tool('htpasswd', ['-B', '-b', '-n', username, password]);
    fs.writeFileSync(path.join(dir, 'htpasswd'), stdout.trim() + '\n');
    authConfig = `auth:\n  htpasswd:\n    realm: ecluse-test\n    path: ${path.join(dir, 'htpasswd')}\n`;
  } else if (auth === 'bearer') {
    const signer = await tokenSigner(dir);
    token = await startTokenServer({ ...signer, username, password, requests: tokenRequests });
    authConfig =
      `auth:\n  token:\n    realm: ${token.url}\n    service: ecluse-test-registry\n` +
      `    issuer: ecluse-test-issuer\n    rootcertbundle: ${signer.certFile}\n`;
  }
  let child: ChildProcess | undefined;
  let log = '';
  let host = '';
  // A free port can be taken between asking and binding (other suites run beside this one): try a few.
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    host = `127.0.0.1:${port}`;
    const config = path.join(dir, 'config.yml');
    fs.writeFileSync(
      config,
      'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n' +
        `storage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'storage')}\n  delete:\n    enabled: true\n` +
        `http:\n  addr: ${host}\n  secret: ${crypto.randomBytes(16).toString('hex')}\n` +
        authConfig,
    );
    log = '';
    const c = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    c.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    try {
      await waitForRegistry(`http://${host}`, c, () => log);
      break;
    } catch (e) {
      c.kill('SIGKILL');
      if (tries >= 3 || !/address already in use/.test(log)) {
        await token?.close();
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
  }
  const proc = child;
  // A test that fails before its afterAll, or a worker that exits, must not leave a registry behind either.
  const orphanGuard = () => proc.kill('SIGKILL');
  process.once('exit', orphanGuard);
  const authFile = path.join(dir, 'auth.json');
  fs.writeFileSync(authFile, containersAuthFile(auth === 'none' ? {} : { [host]: { username, password } }), {
    mode: 0o600,
  });
  const url = `http://${host}`;
  const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  return {
    host,
    url,
    auth,
    username,
    password,
    authFile,
    dir,
    log: () => log,
    tokenRequests,
    async fetch(p, init = {}) {
      const headers = new Headers(init.headers);
      if (auth === 'basic') headers.set('Authorization', basic);
      if (auth === 'bearer' && token) {
        const scope = init.scope ?? `repository:${p.split('/').slice(2, -2).join('/')}:pull`;
        const t = await fetch(`${token.url}?service=ecluse-test-registry&scope=${encodeURIComponent(scope)}`, {
          headers: { Authorization: basic },
        });
        headers.set('Authorization', `Bearer ${((await t.json()) as { token: string }).token}`);
      }
      return fetch(`${url}${p}`, { ...init, headers });
    },
    async stop() {
      process.removeListener('exit', orphanGuard);
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
        if (proc.exitCode === null && proc.signalCode === null) {
          proc.kill('SIGKILL');
          await exited;
        }
      }
      await token?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
