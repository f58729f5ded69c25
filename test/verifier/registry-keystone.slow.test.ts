/**
 * The registry at a Keystone site, against the real Keystone (Debian's `keystone`, test/helpers/keystone.ts): a user's
 * Keystone token pulls (as the Basic password container tools send, or as a Bearer token); a token Keystone does not
 * know is refused with the Basic challenge; and, as the Glance API, loopback clients without a token are refused too.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../verifier/db.js';
import { parseKeystoneSettings, setKeystoneSettings } from '../../verifier/glance/keystone-settings.js';
import { importHome } from '../../verifier/home.js';
import { startRegistryServer, type RegistryServer } from '../../verifier/registry/server.js';
import { startKeystone, type KeystonePeer } from '../helpers/keystone.js';
import { buildImage, storeImage } from '../helpers/oci-image.js';

let dir: string;
let db: Db;
let keystone: KeystonePeer;
let server: RegistryServer;
let userToken: string;

async function adminToken(url: string): Promise<string> {
  const r = await fetch(`${url}/auth/tokens`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'admin', domain: { name: 'Default' }, password: 'keystone-admin' } },
        },
        scope: { project: { name: 'admin', domain: { name: 'Default' } } },
      },
    }),
  });
  const token = r.headers.get('x-subject-token');
  if (r.status !== 201 || !token) throw new Error(`Keystone gave no token: ${r.status} ${await r.text()}`);
  return token;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-registry-keystone-'));
  keystone = await startKeystone(path.join(dir, 'keystone'));
  db = openDb(path.join(dir, 'home'));
  const h = importHome(path.join(dir, 'home'));
  storeImage(db, h, buildImage({ platforms: [{ os: 'linux', architecture: 'amd64' }] }), {
    repository: 'acme/app',
    tag: '1.0',
    version: '1.0',
  });
  const passwordFile = path.join(dir, 'service.pw');
  fs.writeFileSync(passwordFile, 'keystone-admin\n', { mode: 0o600 });
  setKeystoneSettings(
    db,
    parseKeystoneSettings({ url: keystone.url, user: 'admin', passwordFile, project: 'admin', cacheSeconds: 0 }),
  );
  userToken = await adminToken(keystone.url);
  server = await startRegistryServer({ db, blobsDir: h.registryBlobs, host: '127.0.0.1', port: 0 });
}, 180_000);

afterAll(async () => {
  await server?.close();
  db?.close();
  await keystone?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const manifest = (headers: Record<string, string> = {}) =>
  fetch(`${server.url}/v2/acme/app/manifests/1.0`, { headers });

describe('the registry at a Keystone site', () => {
  it('a Keystone token pulls, as a Basic password or a Bearer token', async () => {
    const basic = `Basic ${Buffer.from(`me:${userToken}`).toString('base64')}`;
    expect((await manifest({ Authorization: basic })).status).toBe(200);
    expect((await manifest({ Authorization: `Bearer ${userToken}` })).status).toBe(200);
  });

  it('an unknown token, and no token even from loopback, get 401 with the Basic challenge', async () => {
    for (const r of [await manifest({ Authorization: 'Bearer not-a-keystone-token' }), await manifest()]) {
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Basic realm="ecluse registry"');
      const body = (await r.json()) as { errors: Array<{ code: string }> };
      expect(body.errors[0]?.code).toBe('UNAUTHORIZED');
    }
  });
});
