/**
 * imageContents / checkImageContents (sneakernet/oci/contents.ts): the platforms and blob list both stations derive
 * from a top manifest and its children, and the import station's comparison with what the statement lists.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../../sneakernet/limits.js';
import { checkImageContents, imageContents, type ImageContents } from '../../../sneakernet/oci/contents.js';
import { OCI_INDEX, OCI_MANIFEST } from '../../../sneakernet/oci/media-types.js';
import { parsePlatform, platformMatches } from '../../../sneakernet/oci/platform.js';
import { expectRefusal } from '../fixtures.js';
import { buildImage, digestOf, layer, type TestImage } from './image-fixtures.js';

const all = () => true;
const childOf = (img: TestImage) => (e: { digest: string }) => img.blobs.get(e.digest);
const listed = (c: ImageContents, top: string) => ({
  digest: top,
  platforms: c.platforms,
  blobs: c.blobs.map((b) => ({ ...b, carried: true })),
});

describe('imageContents', () => {
  it('lists the top manifest first, then per carried platform its manifest, config and layers, shared blobs once', () => {
    const base = layer();
    const img = buildImage({ platforms: ['linux/amd64', 'linux/arm64/v8'], baseLayers: [base] });
    const c = imageContents(img.top, childOf(img), all, 'acme/app');
    const amd = img.platforms.get('linux/amd64');
    const arm = img.platforms.get('linux/arm64/v8');
    if (!amd || !arm) throw new Error('fixture');
    expect(c.platforms).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    expect(c.blobs.map((b) => b.digest)).toEqual([
      img.top.digest,
      amd.manifest.digest,
      amd.config.digest,
      ...amd.layers.map((l) => l.digest),
      arm.manifest.digest,
      arm.config.digest,
      (arm.layers[1] as { digest: string }).digest, // the base layer is listed once, under amd64
    ]);
    expect(c.blobs.filter((b) => b.digest === digestOf(base))).toHaveLength(1);
    expect(c.blobs.length).toBe(img.blobs.size);
  });

  it('carries only the platforms asked for (no variant asked: any variant)', () => {
    const img = buildImage({ platforms: ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7'] });
    const asked = [parsePlatform('linux/arm64')];
    const c = imageContents(img.top, childOf(img), (e) => asked.some((p) => platformMatches(p, e.platform)), 'x');
    expect(c.platforms).toEqual([{ os: 'linux', architecture: 'arm64', variant: 'v8' }]);
    expect(c.manifests.map((m) => m.digest)).toEqual([img.platforms.get('linux/arm64/v8')?.manifest.digest]);
    expect(c.blobs).toHaveLength(1 + 1 + 1 + 2);
  });

  it('a single manifest: no platforms, the manifest, its config and layers', () => {
    const img = buildImage({ platforms: ['linux/amd64'], single: true, flavour: 'docker' });
    const c = imageContents(img.top, () => undefined, all, 'x');
    expect(c.platforms).toEqual([]);
    expect(c.blobs.map((b) => b.digest)[0]).toBe(img.top.digest);
    expect(c.blobs).toHaveLength(img.blobs.size);
  });

  it('refuses a child manifest that is not at hand (E_IMAGE_BLOB_MISSING) or whose bytes differ (E_DIGEST)', async () => {
    const img = buildImage();
    await expectRefusal(
      () => imageContents(img.top, () => undefined, all, 'acme/app'),
      'E_IMAGE_BLOB_MISSING',
      'acme/app',
    );
    const amd = img.platforms.get('linux/amd64')?.manifest.digest ?? '';
    const swapped = (e: { digest: string }) => {
      const b = Buffer.from(img.blobs.get(e.digest) as Buffer);
      if (e.digest === amd) b[b.length - 2] = 0x20; // same size, other bytes
      return b;
    };
    await expectRefusal(() => imageContents(img.top, swapped, all, 'x'), 'E_DIGEST', amd);
    await expectRefusal(
      () => imageContents({ ...img.top, digest: digestOf(Buffer.from('other')) }, childOf(img), all, 'x'),
      'E_DIGEST',
      'top manifest',
    );
  });

  it('refuses an index of which no manifest is carried, and an image needing more than LIMITS.imageBlobs blobs', async () => {
    const img = buildImage();
    await expectRefusal(
      () => imageContents(img.top, childOf(img), () => false, 'x'),
      'E_IMAGE_MANIFEST',
      'carries none',
    );
    // 9 platforms of 512 distinct layers each (bounded per manifest) make more than 4096 blobs.
    const blobs = new Map<string, Buffer>();
    const manifests = Array.from({ length: 9 }, (_, p) => {
      const layers = Array.from({ length: LIMITS.imageLayers }, (_, i) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
        digest: `sha256:${(p * 1000 + i + 1).toString(16).padStart(64, '0')}`,
        size: 1,
      }));
      const m = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: {
            mediaType: 'application/vnd.oci.image.config.v1+json',
            digest: digestOf(Buffer.from(`c${p}`)),
            size: 2,
          },
          layers,
        }),
      );
      blobs.set(digestOf(m), m);
      return {
        mediaType: OCI_MANIFEST,
        digest: digestOf(m),
        size: m.length,
        platform: { os: 'linux', architecture: `a${p}` },
      };
    });
    const top = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
    await expectRefusal(
      () =>
        imageContents(
          { digest: digestOf(top), mediaType: OCI_INDEX, bytes: top },
          (e) => blobs.get(e.digest),
          all,
          'big',
        ),
      'E_IMAGE_MANIFEST',
      `more than ${LIMITS.imageBlobs} blobs`,
    );
  });
});

describe('checkImageContents (what the import station compares)', () => {
  const img = buildImage({ platforms: ['linux/amd64', 'linux/arm64'] });
  const derived = imageContents(img.top, childOf(img), all, 'x');

  it('accepts the list the export station made, in any order of platforms', () => {
    const l = listed(derived, img.top.digest);
    expect(() => checkImageContents({ ...l, platforms: [...l.platforms].reverse() }, derived, 'x')).not.toThrow();
  });

  it('E_IMAGE_BLOB_MISSING: a manifest names a blob the statement does not list', async () => {
    const l = listed(derived, img.top.digest);
    const dropped = l.blobs[3]?.digest ?? '';
    l.blobs.splice(3, 1);
    await expectRefusal(() => checkImageContents(l, derived, 'acme/app@1'), 'E_IMAGE_BLOB_MISSING', dropped);
  });

  it('E_IMAGE_MANIFEST: a listed blob no carried manifest needs, a size that differs, other platforms', async () => {
    const extra = listed(derived, img.top.digest);
    extra.blobs.push({
      digest: digestOf(Buffer.from('x')),
      size: 1,
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      carried: true,
    });
    await expectRefusal(
      () => checkImageContents(extra, derived, 'a'),
      'E_IMAGE_MANIFEST',
      'none of its carried manifests',
    );
    const size = listed(derived, img.top.digest);
    (size.blobs[2] as { size: number }).size += 1;
    await expectRefusal(() => checkImageContents(size, derived, 'a'), 'E_IMAGE_MANIFEST', 'is listed as');
    const plat = listed(derived, img.top.digest);
    plat.platforms = [{ os: 'linux', architecture: 'amd64' }];
    await expectRefusal(() => checkImageContents(plat, derived, 'a'), 'E_IMAGE_MANIFEST', 'platforms');
  });
});

describe('parsePlatform', () => {
  it('reads OS/ARCH[/VARIANT] and refuses anything else with E_USAGE', async () => {
    expect(parsePlatform('linux/arm/v7')).toEqual({ os: 'linux', architecture: 'arm', variant: 'v7' });
    for (const bad of ['linux', 'linux/', '/amd64', 'a/b/c/d', 'linux/am d64']) {
      await expectRefusal(() => parsePlatform(bad), 'E_USAGE', bad);
    }
  });
});
