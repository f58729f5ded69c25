/**
 * Pushing container images from the registry store into a site's registry, against Debian's real docker-registry:
 * a two-platform image built with umoci (basic auth, then bearer tokens), the tag served with the vendor's digest and
 * every child manifest by digest; a second version skipping the base layers the target has; Docker media types kept
 * byte for byte; wrong credentials and an unreachable target retried, recorded, audited; a target that rewrites the
 * manifest (a proxy re-serializing it before the real registry) refused at once, its manifest deleted; a damaged
 * store blob never sent.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../conformance/peers.js';
import { skopeoInspectRaw } from '../../helpers/oci/clients.js';
import { buildVendorImage, type ImageVersion, type VendorImage } from '../../helpers/oci/image.js';
import { startRegistry, type Registry } from '../../helpers/oci/registry.js';
import { blobOf, storeImage, type TestBlob, type TestImage } from '../../helpers/oci-image.js';
import { tmpDir } from '../../helpers/world.js';
import { openDb, type Db } from '../../../verifier/db.js';
import { importHome, type ImportHome } from '../../../verifier/home.js';
import { imageByTag, type ContainerImage } from '../../../verifier/registry/images.js';
import { pushRecords } from '../../../verifier/targets/targets.js';
import { pushContainerImage, pushToRegistryTargets } from '../../../verifier/targets/registry-push.js';
import {
  addRegistryTarget,
  listRegistryTargets,
  type RegistryTarget,
} from '../../../verifier/targets/registry-targets.js';

const FAST = { retryDelayMs: 1 };
let root: string;
let home: ImportHome;
let db: Db;
let built: VendorImage;
let site: Registry;

/** A version built by umoci, as the import station's store holds it after a verified import. */
function asTestImage(image: VendorImage, v: ImageVersion): TestImage {
  const blobs = v.blobs.map((d) => ({ ...d, bytes: image.blob(d.digest) }));
  return {
    top: blobs[0]!,
    platforms: v.manifests.map((m) => m.platform),
    blobs,
    layers: new Map(),
  };
}

function store(t: TestImage, repository: string, tag: string, version: string): ContainerImage {
  storeImage(db, home, t, { repository, tag, version, name: repository.split('/').pop() });
  return imageByTag(db, repository, tag)!;
}

function audit(kind: string): { message: string; code: string | null; details: string }[] {
  return db.prepare('SELECT message, code, details FROM audit WHERE kind = ? ORDER BY seq').all(kind) as {
    message: string;
    code: string | null;
    details: string;
  }[];
}

function target(name: string, registry: Registry, url = registry.url): RegistryTarget {
  addRegistryTarget(db, {
    name,
    url,
    credentials: registry.auth === 'none' ? undefined : { username: registry.username, password: registry.password },
    authFile: registry.authFile,
  });
  return listRegistryTargets(db).find((t) => t.name === name)!;
}

beforeAll(async () => {
  root = tmpDir('ecluse-registry-push-');
  home = importHome(path.join(root, 'home'));
  fs.mkdirSync(home.root, { recursive: true });
  db = openDb(home.root);
  built = await buildVendorImage(path.join(root, 'build'), { versions: ['1.0', '2.0'] });
  site = await startRegistry(path.join(root, 'site-registry'), { username: 'ecluse' });
}, 180_000);

afterAll(async () => {
  await site?.stop();
  db?.close();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('pushing to a docker-registry with basic auth', () => {
  it('blobs, child manifests by digest, the tag: the target serves the vendor digest', async () => {
    const v1 = built.version('1.0');
    const image = store(asTestImage(built, v1), 'acme/app', '1.0', '1.0');
    const t = target('site', site);
    const r = await pushContainerImage(db, home.registryBlobs, t, image, FAST);
    expect(r, r.message).toMatchObject({ ok: true, attempts: 1, imageId: 'acme/app:1.0' });
    expect(r.remoteId).toBe(`${site.host}/acme/app@${v1.index.digest}`);
    const inspected = await skopeoInspectRaw(`docker://${site.host}/acme/app:1.0`, { authFile: site.authFile });
    expect(inspected.digest).toBe(v1.index.digest);
    expect(inspected.raw.equals(built.blob(v1.index.digest))).toBe(true);
    for (const m of v1.manifests) {
      const res = await site.fetch(`/v2/acme/app/manifests/${m.descriptor.digest}`, {
        headers: { Accept: m.descriptor.mediaType },
      });
      expect(res.headers.get('docker-content-digest')).toBe(m.descriptor.digest);
    }
    const pushed = audit('target.pushed');
    expect(pushed).toHaveLength(1);
    expect(JSON.parse(pushed[0]!.details)).toMatchObject({
      target: 'site',
      image: 'acme/app:1.0',
      digest: v1.index.digest,
      uploaded: v1.blobs.length - 3, // the index and the two platform manifests are PUT as manifests
      skipped: 0,
    });
    expect(pushRecords(db, 'site')).toEqual([
      expect.objectContaining({ image_id: 'acme/app:1.0', status: 'active', remote_id: r.remoteId, attempts: 1 }),
    ]);
  });

  it('a second version uploads only its new blobs: the shared base layers are found by HEAD', async () => {
    const v2 = built.version('2.0');
    const image = store(asTestImage(built, v2), 'acme/app', '2.0', '2.0');
    const t = listRegistryTargets(db).find((x) => x.name === 'site')!;
    const r = await pushContainerImage(db, home.registryBlobs, t, image, FAST);
    expect(r.ok, r.message).toBe(true);
    const details = JSON.parse(audit('target.pushed').pop()!.details) as Record<string, number>;
    expect(details.skipped).toBe(2); // the amd64 and arm64 base layers
    const newBlobs = v2.newBlobs.filter((b) => !b.mediaType.includes('manifest') && !b.mediaType.includes('index'));
    expect(details.uploaded).toBe(newBlobs.length);
    expect(details.uploadedBytes).toBe(newBlobs.reduce((s, b) => s + b.size, 0));
    expect((await skopeoInspectRaw(`docker://${site.host}/acme/app:2.0`, { authFile: site.authFile })).digest).toBe(
      v2.index.digest,
    );
  });

  it('Docker media types (manifest list v2, schema 2) keep their bytes and digest, under a repository prefix', async () => {
    const layer = blobOf(crypto.randomBytes(4000), 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    const config = blobOf(
      Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } })),
      'application/vnd.docker.container.image.v1+json',
    );
    const desc = (b: TestBlob) => ({ mediaType: b.mediaType, size: b.size, digest: b.digest });
    // the spacing of a manifest some other tool wrote: any re-serialization would change the digest
    const manifest = blobOf(
      Buffer.from(
        JSON.stringify(
          {
            schemaVersion: 2,
            mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
            config: desc(config),
            layers: [desc(layer)],
          },
          null,
          3,
        ),
      ),
      'application/vnd.docker.distribution.manifest.v2+json',
    );
    const list = blobOf(
      Buffer.from(
        JSON.stringify(
          {
            schemaVersion: 2,
            mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
            manifests: [{ ...desc(manifest), platform: { os: 'linux', architecture: 'amd64' } }],
          },
          null,
          3,
        ),
      ),
      'application/vnd.docker.distribution.manifest.list.v2+json',
    );
    const image = store(
      {
        top: list,
        platforms: [{ os: 'linux', architecture: 'amd64' }],
        blobs: [list, manifest, config, layer],
        layers: new Map(),
      },
      'legacy/tool',
      'v1',
      '1',
    );
    const t = target('prefixed', site, `${site.url}/mirror`);
    const r = await pushContainerImage(db, home.registryBlobs, t, image, FAST);
    expect(r.ok, r.message).toBe(true);
    expect(r.remoteId).toBe(`${site.host}/mirror/legacy/tool@${list.digest}`);
    const inspected = await skopeoInspectRaw(`docker://${site.host}/mirror/legacy/tool:v1`, {
      authFile: site.authFile,
    });
    expect(inspected).toMatchObject({ digest: list.digest, mediaType: list.mediaType });
  });

  it('wrong credentials: three attempts, each audited, the push recorded failed with the reason', async () => {
    addRegistryTarget(db, { name: 'wrong', url: site.url, credentials: { username: 'ecluse', password: 'nope' } });
    const t = listRegistryTargets(db).find((x) => x.name === 'wrong')!;
    const image = imageByTag(db, 'acme/app', '1.0')!;
    const before = audit('target.push-attempt-failed').length;
    const r = await pushContainerImage(db, home.registryBlobs, t, image, FAST);
    expect(r).toMatchObject({ ok: false, attempts: 3, remoteId: null });
    expect(r.message).toContain('the registry refused the credentials of ecluse');
    expect(audit('target.push-attempt-failed').length - before).toBe(3);
    expect(pushRecords(db, 'wrong')).toEqual([expect.objectContaining({ status: 'failed', attempts: 3 })]);
  });

  it('an unreachable target fails after retries; pushToRegistryTargets never throws and covers every target', async () => {
    addRegistryTarget(db, { name: 'zz-dead', url: `http://127.0.0.1:${await freePort()}` });
    const image = imageByTag(db, 'acme/app', '1.0')!;
    const results = await pushToRegistryTargets(db, home.registryBlobs, [image], FAST);
    const byTarget = Object.fromEntries(results.map((r) => [r.target, r]));
    expect(Object.keys(byTarget).sort()).toEqual(['prefixed', 'site', 'wrong', 'zz-dead']);
    expect(byTarget.site).toMatchObject({ ok: true });
    expect(byTarget['zz-dead']).toMatchObject({ ok: false, attempts: 3 });
    expect(byTarget['zz-dead']!.message).toMatch(/cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/);
  });

  it('a damaged or missing blob in the store is never sent: refused at once (no retry), the store named in the record', async () => {
    const layer = blobOf(crypto.randomBytes(3000), 'application/vnd.oci.image.layer.v1.tar+gzip');
    const config = blobOf(
      Buffer.from('{"architecture":"amd64","os":"linux"}'),
      'application/vnd.oci.image.config.v1+json',
    );
    const manifest = blobOf(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: config.mediaType, digest: config.digest, size: config.size },
          layers: [{ mediaType: layer.mediaType, digest: layer.digest, size: layer.size }],
        }),
      ),
      'application/vnd.oci.image.manifest.v1+json',
    );
    const image = store(
      { top: manifest, platforms: [], blobs: [manifest, config, layer], layers: new Map() },
      'acme/damaged',
      '1',
      '1',
    );
    const file = path.join(home.registryBlobs, layer.digest.slice(7));
    fs.chmodSync(file, 0o644);
    fs.writeFileSync(file, crypto.randomBytes(3000));
    const t = listRegistryTargets(db).find((x) => x.name === 'site')!;
    const r = await pushContainerImage(db, home.registryBlobs, t, image, { ...FAST, attempts: 3 });
    expect(r).toMatchObject({ ok: false, attempts: 1 });
    expect(r.message).toContain(`the stored blob ${layer.digest} no longer has that digest`);
    const head = await site.fetch(`/v2/acme/damaged/manifests/1`, { method: 'HEAD' });
    expect(head.status).toBe(404);
    // a blob file gone from the store: said to be the store's fault, at once
    fs.rmSync(file);
    const gone = await pushContainerImage(db, home.registryBlobs, t, image, { ...FAST, attempts: 3 });
    expect(gone).toMatchObject({ ok: false, attempts: 1 });
    expect(gone.message).toContain('cannot read a stored blob to send it (ENOENT');
  });
});

describe('a target that rewrites manifests', () => {
  let proxy: http.Server;
  let proxyUrl: string;

  beforeAll(async () => {
    // In front of the real registry: manifests PUT through it are re-serialized (another digest), as a registry
    // that converts media types or normalizes JSON would store them.
    proxy = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: Buffer = Buffer.concat(chunks);
        // (Host kept: the registry builds its upload Locations from it, so they point back at the proxy)
        const headers = { ...req.headers } as Record<string, string>;
        if (req.method === 'PUT' && /\/manifests\/[^/]+$/.test(req.url ?? '') && !/sha256:/.test(req.url ?? '')) {
          body = Buffer.from(JSON.stringify(JSON.parse(body.toString()), null, 1));
          headers['content-length'] = String(body.length);
        }
        const out = http.request(`${site.url}${req.url}`, { method: req.method, headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        out.end(body);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    proxy.closeAllConnections();
    await new Promise((r) => proxy.close(r));
  });

  it('the answered digest is not the signed one: refused without retry, audited, the rewritten manifest deleted', async () => {
    const v1 = built.version('1.0');
    const image = imageByTag(db, 'acme/app', '1.0')!;
    addRegistryTarget(db, {
      name: 'rewriter',
      url: `${proxyUrl}/rewritten`,
      credentials: { username: site.username, password: site.password },
    });
    const t = listRegistryTargets(db).find((x) => x.name === 'rewriter')!;
    const r = await pushContainerImage(db, home.registryBlobs, t, image, FAST);
    expect(r).toMatchObject({ ok: false, attempts: 1, remoteId: null });
    expect(r.message).toContain(`not as the signed ${v1.index.digest}`);
    expect(r.message).toContain('the manifest it made was deleted');
    const refused = audit('target.push-refused');
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ code: 'E_TARGET' });
    const head = await site.fetch('/v2/rewritten/acme/app/manifests/1.0', {
      method: 'HEAD',
      headers: { Accept: v1.index.mediaType },
    });
    expect(head.status).toBe(404);
  });
});

describe('pushing to a registry with bearer tokens', () => {
  it('asks the token service for pull,push on the repository and pushes with the vendor digest', async () => {
    const bearer = await startRegistry(path.join(root, 'bearer'), { auth: 'bearer', username: 'pusher' });
    try {
      const t = target('bearer', bearer);
      const image = imageByTag(db, 'acme/app', '2.0')!;
      const r = await pushContainerImage(db, home.registryBlobs, t, image, FAST);
      expect(r.ok, r.message).toBe(true);
      expect(bearer.tokenRequests).toContainEqual({ scope: 'repository:acme/app:pull,push', authorized: true });
      expect(
        (await skopeoInspectRaw(`docker://${bearer.host}/acme/app:2.0`, { authFile: bearer.authFile })).digest,
      ).toBe(built.version('2.0').index.digest);
    } finally {
      await bearer.stop();
    }
  });
});
