/**
 * Who may pull from the registry, with real requests: écluse tokens presented as container tools present them
 * (Basic password, Bearer, X-Auth-Token), revoked tokens refused, the Basic challenge that makes tools send their
 * credentials, and the site setting `registry_anonymous_pulls` (loopback by default, anyone, none), from loopback and
 * from this machine's non-loopback address.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, setSetting, type Db } from '../../verifier/db.js';
import { createToken, revokeToken } from '../../verifier/glance/auth.js';
import { importHome } from '../../verifier/home.js';
import { startRegistryServer, type RegistryServer } from '../../verifier/registry/server.js';
import { buildImage, storeImage } from '../helpers/oci-image.js';

let home: string;
let db: Db;
let local: RegistryServer;
let remote: RegistryServer;
let reader: string;
let revoked: string;

/** This machine's first non-loopback IPv4 address: requests to it come from a non-loopback peer address. */
function outsideAddress(): string {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  throw new Error('this test needs a non-loopback IPv4 address on this machine');
}

const basic = (token: string) => `Basic ${Buffer.from(`anyone:${token}`).toString('base64')}`;
const manifest = (s: RegistryServer, headers: Record<string, string> = {}) =>
  fetch(`${s.url}/v2/acme/app/manifests/1.0`, { headers });

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-registry-auth-'));
  db = openDb(home);
  const h = importHome(home);
  storeImage(db, h, buildImage({ platforms: [{ os: 'linux', architecture: 'amd64' }] }), {
    repository: 'acme/app',
    tag: '1.0',
    version: '1.0',
  });
  reader = createToken(db, 'reader', 'puller').token;
  const gone = createToken(db, 'reader', 'gone');
  revoked = gone.token;
  revokeToken(db, gone.record.id);
  local = await startRegistryServer({ db, blobsDir: h.registryBlobs, host: '127.0.0.1', port: 0 });
  remote = await startRegistryServer({ db, blobsDir: h.registryBlobs, host: outsideAddress(), port: 0 });
});

afterAll(async () => {
  await local.close();
  await remote.close();
  db.close();
  fs.rmSync(home, { recursive: true, force: true });
});

async function expectUnauthorized(r: Response): Promise<void> {
  expect(r.status).toBe(401);
  expect(r.headers.get('www-authenticate')).toBe('Basic realm="ecluse registry"');
  const body = (await r.json()) as { errors: Array<{ code: string; message: string }> };
  expect(body.errors[0]?.code).toBe('UNAUTHORIZED');
  expect(body.errors[0]?.message).toContain('ecluse token create --role reader');
}

describe('registry access', () => {
  it('by default: loopback pulls without a token, others need one (as the Glance API)', async () => {
    setSetting(db, 'registry_anonymous_pulls', 'loopback');
    expect((await manifest(local)).status).toBe(200);
    await expectUnauthorized(await fetch(`${remote.url}/v2/`));
    await expectUnauthorized(await manifest(remote));
    expect((await manifest(remote, { Authorization: basic(reader) })).status).toBe(200);
  });

  it('a token works as a Basic password, a Bearer token or X-Auth-Token; a revoked or unknown one does not', async () => {
    setSetting(db, 'registry_anonymous_pulls', 'none');
    await expectUnauthorized(await manifest(local));
    expect((await manifest(local, { Authorization: basic(reader) })).status).toBe(200);
    expect((await manifest(local, { Authorization: `Bearer ${reader}` })).status).toBe(200);
    expect((await manifest(local, { 'X-Auth-Token': reader })).status).toBe(200);
    await expectUnauthorized(await manifest(local, { Authorization: basic(revoked) }));
    await expectUnauthorized(await manifest(local, { Authorization: basic('ecl_made-up') }));
    await expectUnauthorized(await manifest(local, { Authorization: 'Basic !!!' }));
  });

  it('registry_anonymous_pulls=anyone serves every client without a token', async () => {
    setSetting(db, 'registry_anonymous_pulls', 'anyone');
    expect((await manifest(remote)).status).toBe(200);
    expect((await fetch(`${remote.url}/v2/_catalog`)).status).toBe(200);
  });

  it('a push is refused with DENIED before credentials are asked for, whoever sends it', async () => {
    setSetting(db, 'registry_anonymous_pulls', 'none');
    const r = await fetch(`${remote.url}/v2/acme/app/blobs/uploads/`, { method: 'POST' });
    expect(r.status).toBe(405);
    const body = (await r.json()) as { errors: Array<{ code: string }> };
    expect(body.errors[0]?.code).toBe('DENIED');
  });
});
