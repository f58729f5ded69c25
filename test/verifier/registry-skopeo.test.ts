/**
 * The registry against the real client: Debian's `skopeo` inspects and copies a two-platform image from the import
 * station's registry (store as an import leaves it) and gets the vendor's digest and bytes; with anonymous pulls
 * off it logs in with an écluse token (`--creds`); a push with `skopeo copy` is refused with the bundle message.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, setSetting, type Db } from '../../verifier/db.js';
import { createToken } from '../../verifier/glance/auth.js';
import { importHome } from '../../verifier/home.js';
import { startRegistryServer, type RegistryServer } from '../../verifier/registry/server.js';
import { buildImage, storeImage, type TestImage } from '../helpers/oci-image.js';

const run = promisify(execFile);
let home: string;
let db: Db;
let server: RegistryServer;
let image: TestImage;

function skopeo(args: string[]) {
  return run('skopeo', ['--insecure-policy', ...args], { env: { ...process.env, HOME: home }, maxBuffer: 1 << 24 });
}

beforeAll(async () => {
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-registry-skopeo-'));
  db = openDb(home);
  const h = importHome(home);
  image = buildImage({
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
    layerSize: 200_000,
  });
  storeImage(db, h, image, { repository: 'acme/app', tag: '1.4', version: '1.4.0' });
  server = await startRegistryServer({ db, blobsDir: h.registryBlobs, host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await server.close();
  db.close();
  fs.rmSync(home, { recursive: true, force: true });
});

describe('skopeo against the registry', () => {
  it('inspects the image and copies every platform with the vendor digest and bytes', async () => {
    const ref = `docker://${server.address}/acme/app:1.4`;
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', ref]);
    expect(Buffer.from(raw.stdout).equals(image.top.bytes)).toBe(true);
    const inspected = JSON.parse((await skopeo(['inspect', '--tls-verify=false', ref])).stdout) as { Digest: string };
    expect(inspected.Digest).toBe(image.top.digest);
    const dir = path.join(home, 'copy');
    await skopeo(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', ref, `oci:${dir}:1.4`]);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string }>;
    };
    expect(index.manifests.map((m) => m.digest)).toEqual([image.top.digest]);
    for (const b of image.blobs) {
      const copied = fs.readFileSync(path.join(dir, 'blobs', 'sha256', b.digest.slice(7)));
      expect(`sha256:${crypto.createHash('sha256').update(copied).digest('hex')}`).toBe(b.digest);
    }
  });

  it('logs in with an écluse token when anonymous pulls are off', async () => {
    setSetting(db, 'registry_anonymous_pulls', 'none');
    try {
      const ref = `docker://${server.address}/acme/app:1.4`;
      await expect(skopeo(['inspect', '--raw', '--tls-verify=false', ref])).rejects.toThrow(
        /unauthorized|authentication required/i,
      );
      const { token } = createToken(db, 'reader', 'skopeo');
      const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `puller:${token}`, ref]);
      expect(Buffer.from(raw.stdout).equals(image.top.bytes)).toBe(true);
    } finally {
      setSetting(db, 'registry_anonymous_pulls', 'loopback');
    }
  });

  it('refuses a push: skopeo copy into it fails with the bundle message', async () => {
    const ref = `docker://${server.address}/acme/app:1.4`;
    const dir = path.join(home, 'push-src');
    await skopeo(['copy', '--src-tls-verify=false', ref, `oci:${dir}:x`]);
    await expect(
      skopeo(['copy', '--dest-tls-verify=false', `oci:${dir}:x`, `docker://${server.address}/acme/pushed:1`]),
    ).rejects.toThrow(/images enter only through verified écluse bundles|denied/i);
  });
});
