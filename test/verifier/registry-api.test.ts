/**
 * The registry's HTTP behaviour with real requests against `startRegistryServer` over a real store (blob files and
 * SQLite rows as an import leaves them): `/v2/`, manifests by tag and digest with their signed media types and
 * Accept negotiation, blobs with Range, listings with pagination, the spec's error bodies, pushes refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../verifier/db.js';
import { importHome } from '../../verifier/home.js';
import { startRegistryServer, type RegistryServer } from '../../verifier/registry/server.js';
import { buildImage, OCI_INDEX, OCI_MANIFEST, storeImage, type TestImage } from '../helpers/oci-image.js';

let home: string;
let db: Db;
let server: RegistryServer;
let app: TestImage;
let other: TestImage;

async function errorOf(r: Response): Promise<{ code: string; message: string }> {
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await r.json()) as { errors: Array<{ code: string; message: string }> };
  expect(body.errors).toHaveLength(1);
  const first = body.errors[0];
  if (!first) throw new Error('no error in the body');
  return first;
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-registry-'));
  db = openDb(home);
  const h = importHome(home);
  app = buildImage({
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
    layerSize: 5000,
  });
  storeImage(db, h, app, { repository: 'acme/app', tag: '1.4', version: '1.4.0' });
  other = buildImage({ platforms: [{ os: 'linux', architecture: 'amd64' }] });
  storeImage(db, h, other, { repository: 'acme/tools', tag: 'latest', version: '2' });
  for (const tag of ['a', 'b', 'c']) {
    storeImage(db, h, buildImage({ platforms: [{ os: 'linux', architecture: 'amd64' }] }), {
      repository: 'zeta/many',
      tag,
      version: tag,
    });
  }
  server = await startRegistryServer({ db, blobsDir: h.registryBlobs, host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server.close();
  db.close();
  fs.rmSync(home, { recursive: true, force: true });
});

describe('the registry API', () => {
  it('/v2/ answers 200 with the Docker-Distribution-API-Version header', async () => {
    const r = await fetch(`${server.url}/v2/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await r.json()).toEqual({});
  });

  it('serves a manifest by tag: the stored bytes, their media type and digest; HEAD the same headers', async () => {
    const r = await fetch(`${server.url}/v2/acme/app/manifests/1.4`, { headers: { Accept: OCI_INDEX } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(OCI_INDEX);
    expect(r.headers.get('docker-content-digest')).toBe(app.top.digest);
    expect(Buffer.from(await r.arrayBuffer()).equals(app.top.bytes)).toBe(true);
    const h = await fetch(`${server.url}/v2/acme/app/manifests/1.4`, { method: 'HEAD' });
    expect(h.status).toBe(200);
    expect(h.headers.get('docker-content-digest')).toBe(app.top.digest);
    expect(h.headers.get('content-length')).toBe(String(app.top.size));
    expect((await h.arrayBuffer()).byteLength).toBe(0);
  });

  it('serves a child manifest by digest with its own media type', async () => {
    const child = app.blobs.find((b) => b.mediaType === OCI_MANIFEST);
    if (!child) throw new Error('no child manifest');
    const r = await fetch(`${server.url}/v2/acme/app/manifests/${child.digest}`, {
      headers: { Accept: `${OCI_MANIFEST}, ${OCI_INDEX}` },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(OCI_MANIFEST);
    expect(Buffer.from(await r.arrayBuffer()).equals(child.bytes)).toBe(true);
  });

  it('never converts: an Accept without the manifest media type is MANIFEST_UNKNOWN saying why', async () => {
    const r = await fetch(`${server.url}/v2/acme/app/manifests/1.4`, {
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    expect(r.status).toBe(404);
    const e = await errorOf(r);
    expect(e.code).toBe('MANIFEST_UNKNOWN');
    expect(e.message).toContain('never converts');
  });

  it('a layer is not a manifest, and a manifest of another repository is not found in this one', async () => {
    const layer = app.blobs[app.blobs.length - 1];
    if (!layer) throw new Error('no layer');
    const r = await fetch(`${server.url}/v2/acme/app/manifests/${layer.digest}`);
    expect(r.status).toBe(404);
    expect((await errorOf(r)).code).toBe('MANIFEST_UNKNOWN');
    const cross = await fetch(`${server.url}/v2/acme/app/manifests/${other.top.digest}`);
    expect((await errorOf(cross)).code).toBe('MANIFEST_UNKNOWN');
  });

  it('serves blobs whole, by HEAD, and by one Range (206, Content-Range); a bad range is 416', async () => {
    const layer = app.blobs[app.blobs.length - 1];
    if (!layer) throw new Error('no layer');
    const url = `${server.url}/v2/acme/app/blobs/${layer.digest}`;
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('docker-content-digest')).toBe(layer.digest);
    expect(whole.headers.get('content-type')).toBe('application/octet-stream');
    expect(Buffer.from(await whole.arrayBuffer()).equals(layer.bytes)).toBe(true);
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(layer.size));
    const part = await fetch(url, { headers: { Range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${layer.size}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(layer.bytes.subarray(100, 200))).toBe(true);
    const tail = await fetch(url, { headers: { Range: 'bytes=-10' } });
    expect(tail.status).toBe(206);
    expect(Buffer.from(await tail.arrayBuffer()).equals(layer.bytes.subarray(layer.size - 10))).toBe(true);
    const bad = await fetch(url, { headers: { Range: `bytes=${layer.size + 5}-` } });
    expect(bad.status).toBe(416);
    expect((await errorOf(bad)).code).toBe('RANGE_INVALID');
  });

  it('answers the spec error codes: NAME_UNKNOWN, MANIFEST_UNKNOWN, BLOB_UNKNOWN, NAME_INVALID, DIGEST_INVALID', async () => {
    const cases: Array<[string, number, string]> = [
      ['/v2/nobody/here/manifests/1.0', 404, 'NAME_UNKNOWN'],
      ['/v2/nobody/here/tags/list', 404, 'NAME_UNKNOWN'],
      ['/v2/acme/app/manifests/9.9', 404, 'MANIFEST_UNKNOWN'],
      [`/v2/acme/app/blobs/sha256:${'0'.repeat(64)}`, 404, 'BLOB_UNKNOWN'],
      // a blob of another repository is unknown here
      [`/v2/acme/app/blobs/${other.blobs[2]?.digest ?? ''}`, 404, 'BLOB_UNKNOWN'],
      ['/v2/Acme/App/manifests/1.4', 400, 'NAME_INVALID'],
      ['/v2/acme/app/blobs/not-a-digest', 400, 'DIGEST_INVALID'],
      ['/v2/acme/app/manifests/-bad', 400, 'TAG_INVALID'],
    ];
    for (const [p, status, code] of cases) {
      const r = await fetch(`${server.url}${p}`);
      expect([p, r.status]).toEqual([p, status]);
      expect(await errorOf(r)).toMatchObject({ code });
    }
  });

  it('lists tags and the catalog with n/last pagination and a Link to the next page', async () => {
    const all = await fetch(`${server.url}/v2/_catalog`);
    expect(await all.json()).toEqual({ repositories: ['acme/app', 'acme/tools', 'zeta/many'] });
    const first = await fetch(`${server.url}/v2/_catalog?n=2`);
    expect(await first.json()).toEqual({ repositories: ['acme/app', 'acme/tools'] });
    expect(first.headers.get('link')).toBe('</v2/_catalog?n=2&last=acme%2Ftools>; rel="next"');
    const next = await fetch(`${server.url}/v2/_catalog?n=2&last=acme%2Ftools`);
    expect(await next.json()).toEqual({ repositories: ['zeta/many'] });
    expect(next.headers.get('link')).toBeNull();
    const tags = await fetch(`${server.url}/v2/zeta/many/tags/list?n=2&last=a`);
    expect(await tags.json()).toEqual({ name: 'zeta/many', tags: ['b', 'c'] });
    const bad = await fetch(`${server.url}/v2/_catalog?n=many`);
    expect(bad.status).toBe(400);
    expect((await errorOf(bad)).code).toBe('PAGINATION_NUMBER_INVALID');
  });

  it('refuses every push method with DENIED / 405, saying images enter only through bundles', async () => {
    const attempts: Array<[string, string]> = [
      ['POST', '/v2/acme/app/blobs/uploads/'],
      ['PUT', '/v2/acme/app/manifests/1.5'],
      ['PATCH', '/v2/acme/app/blobs/uploads/x'],
      ['DELETE', `/v2/acme/app/manifests/${app.top.digest}`],
    ];
    for (const [method, p] of attempts) {
      const r = await fetch(`${server.url}${p}`, { method, body: method === 'DELETE' ? undefined : 'x' });
      expect([method, r.status]).toEqual([method, 405]);
      expect(r.headers.get('allow')).toBe('GET, HEAD');
      const e = await errorOf(r);
      expect(e.code).toBe('DENIED');
      expect(e.message).toContain('images enter only through verified écluse bundles');
    }
    // nothing changed
    const still = await fetch(`${server.url}/v2/acme/app/manifests/1.4`);
    expect(still.headers.get('docker-content-digest')).toBe(app.top.digest);
  });
});
