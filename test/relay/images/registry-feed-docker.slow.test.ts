/**
 * A `registry` feed against a real registry: Debian's docker-registry on loopback with htpasswd basic auth (the
 * oci-proof harness), the tags listed by `skopeo list-tags` with the feed's auth file, each signed release taken in
 * with the vendor's digest; an unsigned one refused; bad credentials an E_FEED naming what skopeo said.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRelayHome, type RelayHome } from '../../../relay/catalog.js';
import { declareFeed, parseFeed, saveFeed } from '../../../relay/feeds/config.js';
import { fetchFeeds } from '../../../relay/feeds/fetch.js';
import { addImage } from '../../../relay/images/add-image.js';
import { imageOf } from '../../../relay/images/catalog-images.js';
import { parsePlatform } from '../../../sneakernet/oci/platform.js';
import { startRegistry, type Registry } from '../../helpers/oci/registry.js';
import { expectRefusal, rmDir, tmpDir } from '../../sneakernet/fixtures.js';
import { buildImage, writeLayout } from '../../sneakernet/oci/image-fixtures.js';
import { makeVendor, writeSignatureTag } from './cosign-fixtures.js';

let root: string;
let home: RelayHome;
let registry: Registry;
const v1 = buildImage({ platforms: ['linux/amd64', 'linux/arm64'], flavour: 'oci' });
const v2 = buildImage({ platforms: ['linux/amd64', 'linux/arm64'] });

function push(layout: string, from: string, tag: string): void {
  const r = spawnSync(
    'skopeo',
    [
      'copy',
      '--quiet',
      '--multi-arch',
      'all',
      '--preserve-digests',
      '--dest-authfile',
      registry.authFile,
      '--dest-tls-verify=false',
      `oci:${layout}:${from}`,
      `docker://${registry.host}/acme/app:${tag}`,
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`skopeo copy failed: ${r.stderr}`);
}

beforeAll(async () => {
  root = await tmpDir('ecluse-registry-feed-docker-');
  home = openRelayHome(path.join(root, 'home'));
  registry = await startRegistry(path.join(root, 'registry'), { auth: 'basic', username: 'vendor' });
  const vendor = makeVendor();
  const layout = path.join(root, 'layout');
  await writeLayout(layout, v1, '1.0');
  await writeLayout(layout, v2, '2.0');
  const sig = `${v1.top.digest.replace(':', '-')}.sig`;
  writeSignatureTag(layout, v1.top.digest, await vendor.sign(v1.top.digest));
  push(layout, '1.0', '1.0');
  push(layout, '2.0', '2.0');
  push(layout, sig, sig);
  fs.writeFileSync(path.join(root, 'acme.pub'), vendor.publicKeyPem);
}, 120_000);

afterAll(async () => {
  home?.db.close();
  await registry?.stop();
  await rmDir(root);
});

function declare(name: string, authfile: string): void {
  const config = parseFeed(
    {
      name,
      vendor: 'acme',
      product: name,
      kind: 'registry',
      url: `docker://${registry.host}/acme/app`,
      authfile,
      publicKeys: ['acme.pub'],
    },
    'feed',
  );
  saveFeed(home.db, declareFeed(config, root), false);
}

describe('a registry feed on a real registry', () => {
  it('lists the tags with the auth file, takes the signed release with its digest, refuses the unsigned one', async () => {
    declare('app', registry.authFile);
    const r = await fetchFeeds(home, { feed: 'app' });
    expect(r.fetched.map((f) => f.version)).toEqual(['1.0']);
    expect(r.refused).toEqual([
      expect.objectContaining({ file: `docker://${registry.host}/acme/app:2.0`, code: 'E_VENDOR_UNTRUSTED' }),
    ]);
    const row = home.db.prepare("SELECT id FROM artifacts WHERE name = 'app' AND version = '1.0'").get() as {
      id: number;
    };
    expect(imageOf(home.db, row.id)).toMatchObject({ repository: 'acme/app', tag: '1.0', digest: v1.top.digest });
  }, 120_000);

  it('add-image with --platform downloads only that platform (the index, then its manifest by digest)', async () => {
    const amd = v2.platforms.get('linux/amd64');
    const arm = v2.platforms.get('linux/arm64');
    if (!amd || !arm) throw new Error('fixture');
    // amd64's own layer is taken out of the registry's storage: a fetch that asked for it would fail.
    const own = (amd.layers[amd.layers.length - 1]?.digest ?? '').slice('sha256:'.length);
    const stored = (fs.readdirSync(registry.dir, { recursive: true }) as string[]).find(
      (p) => path.basename(p) === own && fs.existsSync(path.join(registry.dir, p, 'data')),
    );
    if (!stored) throw new Error('the layer is not in the registry storage');
    fs.rmSync(path.join(registry.dir, stored, 'data'));
    const r = await addImage(home, {
      reference: `docker://${registry.host}/acme/app:2.0`,
      name: 'picked',
      version: '2.0',
      platforms: [parsePlatform('linux/arm64')],
      properties: {},
      vendor: null,
      authfile: registry.authFile,
      vendorKeys: [],
    });
    expect(r.image.digest).toBe(v2.top.digest);
    expect(r.image.blobs.map((b) => b.digest)).toEqual([
      v2.top.digest,
      arm.manifest.digest,
      arm.config.digest,
      ...arm.layers.map((l) => l.digest),
    ]);
    // The control: every platform needs that layer, and the fetch fails without it.
    await expectRefusal(
      addImage(home, {
        reference: `docker://${registry.host}/acme/app:2.0`,
        name: 'all',
        version: '2.0',
        platforms: [],
        properties: {},
        vendor: null,
        authfile: registry.authFile,
        vendorKeys: [],
      }),
      'E_FEED',
      'skopeo failed',
    );
  }, 120_000);

  it('E_FEED: credentials the registry refuses (the message says what skopeo said)', async () => {
    const bad = path.join(root, 'bad-auth.json');
    fs.writeFileSync(
      bad,
      JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('vendor:wrong').toString('base64') } } }),
    );
    declare('wrong', bad);
    const r = await fetchFeeds(home, { feed: 'wrong' });
    expect(r.fetched).toEqual([]);
    expect(r.refused).toEqual([expect.objectContaining({ feed: 'wrong', file: null, code: 'E_FEED' })]);
    expect(r.refused[0]?.message).toMatch(/skopeo failed: .*(unauthorized|authentication required)/i);
  }, 120_000);
});
