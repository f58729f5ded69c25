/**
 * The container harness itself, with the real tools: a docker-registry with htpasswd basic auth (and one with bearer
 * tokens) on loopback, a two-platform image built with umoci and pushed with skopeo (the registry serves the very
 * index built), a second version sharing the base layers, a cosign-format signature under `sha256-<hex>.sig`, podman
 * pulling with vfs storage; and nothing left behind by `stop()`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tmpDir } from '../world.js';
import { privatePodman, skopeoCopyToOci, skopeoInspect, skopeoInspectRaw } from './clients.js';
import { cosignTag, makeCosignVendor, pushCosignSignature, SIGNATURE_ANNOTATION, SIMPLE_SIGNING } from './cosign.js';
import { buildVendorImage, pushToRegistry, type VendorImage } from './image.js';
import { startRegistry, type Registry } from './registry.js';

let root: string;
let registry: Registry;
let image: VendorImage;

beforeAll(async () => {
  root = tmpDir('ecluse-oci-harness-');
  registry = await startRegistry(path.join(root, 'vendor-registry'));
  image = await buildVendorImage(path.join(root, 'build'), { versions: ['1.0', '2.0'] });
  await pushToRegistry(image, '1.0', registry, 'acme/app');
  await pushToRegistry(image, '2.0', registry, 'acme/app');
}, 180_000);

afterAll(async () => {
  await registry?.stop();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('the vendor registry', () => {
  it('asks for credentials (basic), refuses wrong ones and serves the built index byte for byte', async () => {
    const anonymous = await fetch(`${registry.url}/v2/acme/app/manifests/1.0`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const wrong = await fetch(`${registry.url}/v2/`, {
      headers: { Authorization: `Basic ${Buffer.from('vendor:nope').toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
    const v1 = image.version('1.0');
    const res = await registry.fetch('/v2/acme/app/manifests/1.0', {
      headers: { Accept: 'application/vnd.oci.image.index.v1+json' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(v1.index.digest);
    expect(Buffer.from(await res.arrayBuffer()).equals(image.blob(v1.index.digest))).toBe(true);
    const inspected = await skopeoInspectRaw(`docker://${registry.host}/acme/app:1.0`, { authFile: registry.authFile });
    expect(inspected).toMatchObject({ digest: v1.index.digest, mediaType: 'application/vnd.oci.image.index.v1+json' });
  });

  it('holds two platforms per version; version 2.0 shares the base layers and adds only its own', async () => {
    const [v1, v2] = [image.version('1.0'), image.version('2.0')];
    expect(v1.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    for (const arch of ['amd64', 'arm64']) {
      const s = await skopeoInspect(`docker://${registry.host}/acme/app:2.0`, { authFile: registry.authFile, arch });
      expect(s.Architecture).toBe(arch);
      const m2 = v2.manifests.find((m) => m.platform.architecture === arch)!;
      const m1 = v1.manifests.find((m) => m.platform.architecture === arch)!;
      expect(s.Layers).toEqual(m2.layers.map((l) => l.digest));
      expect(m2.layers[0]!.digest).toBe(m1.layers[0]!.digest); // the shared base layer
    }
    const shared = v2.blobs.filter((b) => v1.blobs.some((x) => x.digest === b.digest));
    expect(shared.map((b) => b.digest).sort()).toEqual(v1.manifests.map((m) => m.layers[0]!.digest).sort());
    expect(v2.newBlobs).toHaveLength(v2.blobs.length - 2);
  });

  it('a cosign signature under sha256-<hex>.sig: payload layer, signature annotation, verifiable with the key', async () => {
    const vendor = makeCosignVendor();
    const v1 = image.version('1.0');
    const sig = await vendor.sign(v1.index.digest, `${registry.host}/acme/app`);
    await pushCosignSignature(path.join(root, 'sig'), sig, registry, 'acme/app');
    const res = await registry.fetch(`/v2/acme/app/manifests/${cosignTag(v1.index.digest)}`, {
      headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(res.status).toBe(200);
    const manifest = (await res.json()) as {
      layers: { mediaType: string; digest: string; annotations: Record<string, string> }[];
    };
    const layer = manifest.layers[0]!;
    expect(layer.mediaType).toBe(SIMPLE_SIGNING);
    const payload = Buffer.from(await (await registry.fetch(`/v2/acme/app/blobs/${layer.digest}`)).arrayBuffer());
    expect(JSON.parse(payload.toString())).toMatchObject({
      critical: { type: 'cosign container image signature', image: { 'docker-manifest-digest': v1.index.digest } },
    });
    const signature = Buffer.from(layer.annotations[SIGNATURE_ANNOTATION]!, 'base64');
    expect(crypto.verify('sha256', payload, vendor.publicKeyPem, signature)).toBe(true);
    const other = makeCosignVendor();
    expect(crypto.verify('sha256', payload, other.publicKeyPem, signature)).toBe(false);
    const bundle = JSON.parse(sig.bundle) as { messageSignature: { signature: string } };
    expect(Buffer.from(bundle.messageSignature.signature, 'base64').equals(signature)).toBe(true);
  });

  it('skopeo copy to an OCI layout and podman pull (vfs, private root) keep the vendor digest', async () => {
    const v1 = image.version('1.0');
    const copied = await skopeoCopyToOci(`docker://${registry.host}/acme/app:1.0`, path.join(root, 'copy'), '1.0', {
      authFile: registry.authFile,
    });
    expect(copied).toBe(v1.index.digest);
    const podman = privatePodman(path.join(root, 'podman'));
    try {
      const id = await podman.pull(`${registry.host}/acme/app:1.0`, { arch: 'arm64', authFile: registry.authFile });
      expect(id).toMatch(/^[0-9a-f]{64}$/);
      expect(await podman.digestOf(`${registry.host}/acme/app:1.0`)).toBe(v1.index.digest);
      const arch = await podman.run(['image', 'inspect', '--format', '{{.Architecture}}', id]);
      expect(arch.trim()).toBe('arm64');
    } finally {
      podman.cleanup();
    }
  });
});

describe('a registry with bearer tokens', () => {
  it('sends clients to its token server; skopeo pushes and pulls with the auth file', async () => {
    const bearer = await startRegistry(path.join(root, 'bearer-registry'), { auth: 'bearer' });
    try {
      const res = await fetch(`${bearer.url}/v2/`);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token"/);
      await pushToRegistry(image, '1.0', bearer, 'site/app');
      expect(bearer.tokenRequests.some((t) => t.authorized && t.scope.includes('repository:site/app:'))).toBe(true);
      const inspected = await skopeoInspectRaw(`docker://${bearer.host}/site/app:1.0`, { authFile: bearer.authFile });
      expect(inspected.digest).toBe(image.version('1.0').index.digest);
      const denied = await fetch(`${bearer.url}/v2/site/app/manifests/1.0`);
      expect(denied.status).toBe(401);
    } finally {
      await bearer.stop();
    }
    expect(fs.existsSync(bearer.dir)).toBe(false);
  });

  it('stop() ends the process and deletes its folder', async () => {
    const r = await startRegistry(path.join(root, 'short-lived'), { auth: 'none' });
    expect((await fetch(`${r.url}/v2/`)).status).toBe(200);
    await r.stop();
    expect(fs.existsSync(r.dir)).toBe(false);
    await expect(fetch(`${r.url}/v2/`)).rejects.toThrow();
  });
});
