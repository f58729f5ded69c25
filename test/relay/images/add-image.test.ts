/**
 * `relay add-image` (relay/images/add-image.ts) with the real skopeo reading OCI layouts the tests build from real
 * bytes: platforms selected with the index kept verbatim, blobs stored once across images, the same image again a
 * no-op, vendor signatures (cosign's tag, or a file) checked against pinned keys, and refusals by code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRelayHome, type RelayHome } from '../../../relay/catalog.js';
import { addImage, type AddImageOptions } from '../../../relay/images/add-image.js';
import { imageOf } from '../../../relay/images/catalog-images.js';
import { LIMITS } from '../../../sneakernet/limits.js';
import { parsePlatform } from '../../../sneakernet/oci/platform.js';
import { expectRefusal, rmDir, tmpDir } from '../../sneakernet/fixtures.js';
import { buildImage, digestOf, layer, writeLayout, type TestImage } from '../../sneakernet/oci/image-fixtures.js';
import { makeVendor, writeSignatureTag, type Vendor } from './cosign-fixtures.js';

let root: string;
let home: RelayHome;
let vendor: Vendor;
let keyFile: string;
let keyPem: string;
const base = layer();
const v1 = buildImage({ platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], baseLayers: [base] });
const v2 = buildImage({ platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'], baseLayers: [base] });

const opts = (o: Partial<AddImageOptions> & { reference: string; version: string }): AddImageOptions => ({
  name: 'app',
  platforms: [],
  repository: 'acme/app',
  properties: {},
  vendor: 'acme',
  vendorKeys: [],
  ...o,
});
const storeFiles = () => fs.readdirSync(path.join(root, 'home', 'blobs', 'sha256')).sort();
const hexes = (img: TestImage) => [...img.blobs.keys()].map((d) => d.slice(7));

beforeAll(async () => {
  root = await tmpDir('ecluse-add-image-');
  home = openRelayHome(path.join(root, 'home'));
  vendor = makeVendor();
  keyFile = path.join(root, 'vendor.pub');
  fs.writeFileSync(keyFile, vendor.publicKeyPem);
  keyPem = vendor.publicKeyPem;
  await writeLayout(path.join(root, 'layout'), v1, '1.0');
  await writeLayout(path.join(root, 'layout'), v2, '2.0');
  writeSignatureTag(path.join(root, 'layout'), v1.top.digest, await vendor.sign(v1.top.digest));
});

afterAll(async () => {
  home.db.close();
  await rmDir(root);
});

describe('relay add-image', () => {
  it('carries the platforms asked for: the index verbatim, only their manifests, configs and layers; signature tag checked', async () => {
    const r = await addImage(
      home,
      opts({
        reference: `oci:${root}/layout:1.0`,
        version: '1.0',
        platforms: [parsePlatform('linux/arm64')],
        vendorKeys: [keyPem],
      }),
    );
    expect(r.created).toBe(true);
    expect(r.image.digest).toBe(v1.top.digest);
    expect(r.image.platforms).toEqual([{ os: 'linux', architecture: 'arm64' }]);
    const arm = v1.platforms.get('linux/arm64');
    expect(r.image.blobs.map((b) => b.digest)).toEqual([
      v1.top.digest,
      arm?.manifest.digest,
      arm?.config.digest,
      ...(arm?.layers.map((l) => l.digest) ?? []),
    ]);
    // The stored top manifest is the vendor's index byte for byte (it still names amd64 and arm/v7).
    const stored = fs.readFileSync(path.join(root, 'home', 'blobs', 'sha256', v1.top.digest.slice(7)));
    expect(digestOf(stored)).toBe(v1.top.digest);
    expect(storeFiles()).toEqual(r.image.blobs.map((b) => b.digest.slice(7)).sort());
    expect(r.signature).toMatchObject({ checked: true, keyId: vendor.keyId });
    expect(JSON.parse(r.artifact.evidence ?? '{}')).toMatchObject({ kind: 'cosign' });
    expect(r.artifact.type).toBe('oci-image');
    // Nothing left behind in the store folder (the private fetch folder is gone).
    expect(fs.readdirSync(path.join(root, 'home', 'blobs')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('the same image again is a no-op; another image under the same version is refused (E_INPUT)', async () => {
    const again = await addImage(
      home,
      opts({ reference: `oci:${root}/layout:1.0`, version: '1.0', platforms: [parsePlatform('linux/arm64')] }),
    );
    expect(again.created).toBe(false);
    await expectRefusal(
      addImage(home, opts({ reference: `oci:${root}/layout:2.0`, version: '1.0' })),
      'E_INPUT',
      'new --version',
    );
  });

  it('all platforms by default; a layer shared with a stored image is stored once', async () => {
    const before = new Set(storeFiles());
    const r = await addImage(home, opts({ reference: `oci:${root}/layout:2.0`, version: '2.0', vendor: null }));
    expect(r.image.platforms.map((p) => `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`)).toEqual([
      'linux/amd64',
      'linux/arm64',
      'linux/arm/v7',
    ]);
    expect(r.image.blobs).toHaveLength(v2.blobs.size);
    expect(before.has(digestOf(base).slice(7))).toBe(true);
    expect(r.blobsStored).toBe(v2.blobs.size - 1); // all but the shared base layer
    expect(storeFiles()).toEqual([...new Set([...before, ...hexes(v2)])].sort());
    expect(imageOf(home.db, r.artifact.id).tag).toBe('2.0');
    expect(r.signature).toBeNull();
  });

  it('E_USAGE: a platform the index does not offer (it names what it offers)', async () => {
    await expectRefusal(
      addImage(
        home,
        opts({ reference: `oci:${root}/layout:2.0`, version: '9', platforms: [parsePlatform('linux/s390x')] }),
      ),
      'E_USAGE',
      'linux/amd64, linux/arm64, linux/arm/v7',
    );
  });

  it('E_VENDOR_UNTRUSTED: vendor keys pinned and no signature; E_VENDOR_DIGEST: a signature over another digest', async () => {
    await expectRefusal(
      addImage(home, opts({ reference: `oci:${root}/layout:2.0`, version: '2.1', vendorKeys: [keyPem] })),
      'E_VENDOR_UNTRUSTED',
      'no cosign signature',
    );
    const file = path.join(root, 'other.sig.json');
    const sig = await vendor.sign(v1.top.digest);
    fs.writeFileSync(file, JSON.stringify({ payload: sig.payload.toString('base64'), bundle: sig.bundle }));
    await expectRefusal(
      addImage(
        home,
        opts({ reference: `oci:${root}/layout:2.0`, version: '2.1', vendorKeys: [keyPem], vendorSignature: file }),
      ),
      'E_VENDOR_DIGEST',
      v1.top.digest,
    );
    const good = path.join(root, 'good.sig.json');
    const sig2 = await vendor.sign(v2.top.digest);
    fs.writeFileSync(good, JSON.stringify({ payload: sig2.payload.toString('base64'), bundle: sig2.bundle }));
    const r = await addImage(
      home,
      opts({ reference: `oci:${root}/layout:2.0`, version: '2.1', vendorKeys: [keyPem], vendorSignature: good }),
    );
    expect(r.signature).toMatchObject({ checked: true, from: good });
  });

  it('E_IMAGE_MANIFEST: an oversized manifest or an index with too many entries; nothing is stored', async () => {
    const bad = path.join(root, 'bad');
    const img = buildImage({ platforms: ['linux/amd64'] });
    await writeLayout(bad, img, 'ok');
    // An index of 257 entries (all naming the same manifest): skopeo copies it, écluse refuses it.
    const entry = img.platforms.get('linux/amd64')?.manifest;
    const big = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: Array.from({ length: LIMITS.imageIndexEntries + 1 }, (_, i) => ({
          ...entry,
          platform: { os: 'linux', architecture: `a${i}` },
        })),
      }),
    );
    fs.writeFileSync(path.join(bad, 'blobs', 'sha256', digestOf(big).slice(7)), big);
    const index = JSON.parse(fs.readFileSync(path.join(bad, 'index.json'), 'utf8')) as { manifests: unknown[] };
    index.manifests.push({
      mediaType: 'application/vnd.oci.image.index.v1+json',
      digest: digestOf(big),
      size: big.length,
      annotations: { 'org.opencontainers.image.ref.name': 'wide' },
    });
    fs.writeFileSync(path.join(bad, 'index.json'), JSON.stringify(index));
    const before = storeFiles();
    await expectRefusal(
      addImage(home, opts({ reference: `oci:${bad}:wide`, version: '3' })),
      'E_IMAGE_MANIFEST',
      'manifests',
    );
    expect(storeFiles()).toEqual(before);
    expect(fs.readdirSync(path.join(root, 'home', 'blobs')).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('E_USAGE: references écluse does not read; E_FEED: a layout that is not there', async () => {
    for (const ref of [
      'docker://reg.example/:1',
      'docker://reg.example/Acme/App:1',
      'docker://reg.example/acme/app',
      'http://x/y',
      'oci:',
    ]) {
      await expectRefusal(addImage(home, opts({ reference: ref, version: '4' })), 'E_USAGE', ref);
    }
    await expectRefusal(
      addImage(home, opts({ reference: `oci:${root}/nowhere:1`, version: '4' })),
      'E_FEED',
      'skopeo failed',
    );
  });
});
