/**
 * The refusals of an oci-image import through the real CLI (issue 18): one per way an image can be wrong (a blob's
 * bytes, a blob the statement does not list or the station does not hold, a platform the policy does not admit, a
 * manifest or index over its bounds, a vendor signature over another digest, an older version), each with its code
 * and the store (images, registry rows and blob files, staging) exactly as it was. Each bundle is the second one of
 * the world, chained to a first bundle carrying acme-app 1.4.0 that beforeAll imports; the accepted imports are in
 * oci-import.test.ts and the shared setup is test/helpers/oci-world.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { registrySnapshot } from '../helpers/oci-bundle.js';
import { blobOf, buildImage, OCI_INDEX, OCI_MANIFEST, type TestImage } from '../helpers/oci-image.js';
import { cosignEvidence, ociWorld, spec, TWO_PLATFORMS, vendor, vmRule } from '../helpers/oci-world.js';
import { bundleOn, expectImportRefused } from '../helpers/world.js';

const h = ociWorld({ importFirst: true });

async function expectRefusedUnchanged(media: string, code: string): Promise<string> {
  const before = registrySnapshot(h.w.inside);
  const r = await expectImportRefused(h.w, media, code);
  expect(registrySnapshot(h.w.inside)).toEqual(before);
  return (JSON.parse(r.stdout) as { message: string }).message;
}

describe('import of oci-image artifacts', () => {
  it('refuses a blob whose bytes do not match its digest (E_DIGEST naming the blob)', async () => {
    const layer = h.app.blobs[h.app.blobs.length - 1] as (typeof h.app.blobs)[number];
    const media = await h.secondBundle('bad-digest', [spec(h.app, '1.5.0', { corrupt: layer.digest })]);
    const message = await expectRefusedUnchanged(media, 'E_DIGEST');
    expect(message).toContain(`the blob ${layer.digest}`);
  });

  it('refuses a manifest naming a blob the statement does not list (E_IMAGE_BLOB_MISSING)', async () => {
    const image = buildImage({ platforms: TWO_PLATFORMS });
    const layer = image.blobs[image.blobs.length - 1] as (typeof image.blobs)[number];
    const media = await h.secondBundle('unlisted', [spec(image, '1.5.0', { unlisted: new Set([layer.digest]) })]);
    const message = await expectRefusedUnchanged(media, 'E_IMAGE_BLOB_MISSING');
    expect(message).toContain(`needs the blob ${layer.digest}, which its statement does not list`);
  });

  it('refuses a listed blob that is neither carried nor held, before reading any volume', async () => {
    const image = buildImage({ platforms: TWO_PLATFORMS });
    const layer = image.blobs[image.blobs.length - 1] as (typeof image.blobs)[number];
    const media = await h.secondBundle('not-held', [spec(image, '1.5.0', { notCarried: new Set([layer.digest]) })]);
    // no volume at all: the refusal comes from the statement, not from reading
    const b = bundleOn(media);
    for (const v of b.volumes) fs.rmSync(path.join(b.volumesDir, v));
    const message = await expectRefusedUnchanged(media, 'E_IMAGE_BLOB_MISSING');
    expect(message).toMatch(
      /does not carry and this station does not hold .*; export a replacement outside: ecluse export --replace 2 /,
    );
  });

  it('refuses a platform the policy does not admit (E_NOT_ALLOWED naming the platform and rule)', async () => {
    await h.applyPolicy([
      vmRule,
      { name: 'amd64-only', artifacts: ['*'], types: ['oci-image'], platforms: ['linux/amd64'] },
    ]);
    try {
      const media = await h.secondBundle('platform', [spec(buildImage({ platforms: TWO_PLATFORMS }), '1.5.0')]);
      const message = await expectRefusedUnchanged(media, 'E_NOT_ALLOWED');
      expect(message).toContain('platform linux/arm64/v8 is not one of linux/amd64 (policy rule amd64-only)');
    } finally {
      await h.applyPolicy([{ name: 'all', artifacts: ['*'], types: ['vm-image', 'oci-image'] }]);
    }
  });

  it('refuses a deeply nested manifest and an oversized one (E_IMAGE_MANIFEST)', async () => {
    for (const [label, extra] of [
      ['nested', { x: JSON.parse('['.repeat(20) + ']'.repeat(20)) as unknown }],
      ['oversized', { padding: 'x'.repeat(4 * 1024 * 1024 + 1) }],
    ] as const) {
      const base = buildImage({ platforms: [{ os: 'linux', architecture: 'amd64' }] });
      const child = base.blobs.find((b) => b.mediaType === OCI_MANIFEST) as (typeof base.blobs)[number];
      const bad = blobOf(
        Buffer.from(JSON.stringify({ ...(JSON.parse(child.bytes.toString()) as object), ...extra })),
        OCI_MANIFEST,
      );
      const index = blobOf(
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: OCI_INDEX,
            manifests: [
              {
                mediaType: OCI_MANIFEST,
                digest: bad.digest,
                size: bad.size,
                platform: { os: 'linux', architecture: 'amd64' },
              },
            ],
          }),
        ),
        OCI_INDEX,
      );
      const image: TestImage = {
        top: index,
        platforms: [{ os: 'linux', architecture: 'amd64' }],
        blobs: [index, bad, ...base.blobs.filter((b) => b !== child)],
        layers: base.layers,
      };
      const media = await h.secondBundle(`manifest-${label}`, [spec(image, '1.5.0')]);
      const message = await expectRefusedUnchanged(media, 'E_IMAGE_MANIFEST');
      expect(message).toMatch(label === 'nested' ? /nests deeper than 16 levels/ : /bytes, over the 4194304 bound/);
    }
  });

  it('refuses an index with too many entries (E_IMAGE_MANIFEST)', async () => {
    const base = buildImage({ platforms: [{ os: 'linux', architecture: 'amd64' }] });
    const child = base.blobs.find((b) => b.mediaType === OCI_MANIFEST) as (typeof base.blobs)[number];
    const entries = Array.from({ length: 257 }, (_, i) => ({
      mediaType: OCI_MANIFEST,
      digest: child.digest,
      size: child.size,
      platform: { os: 'linux', architecture: 'amd64', variant: `v${i}` },
    }));
    const index = blobOf(
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: entries })),
      OCI_INDEX,
    );
    const image: TestImage = {
      top: index,
      platforms: [{ os: 'linux', architecture: 'amd64', variant: 'v0' }],
      blobs: [index, ...base.blobs],
      layers: base.layers,
    };
    const media = await h.secondBundle('index-entries', [spec(image, '1.5.0')]);
    const message = await expectRefusedUnchanged(media, 'E_IMAGE_MANIFEST');
    expect(message).toMatch(/manifests: Too big: expected array to have <=256 items/);
  });

  it('refuses a vendor cosign signature over another digest (E_VENDOR_DIGEST)', async () => {
    await h.applyPolicy([
      vmRule,
      { name: 'acme', artifacts: ['acme-*'], types: ['oci-image'], vendorKeys: [vendor.publicKeyPem] },
    ]);
    try {
      const image = buildImage({ platforms: TWO_PLATFORMS });
      const media = await h.secondBundle('cosign-other', [
        spec(image, '1.5.0', { evidence: await cosignEvidence(h.app.top.digest) }),
      ]);
      const message = await expectRefusedUnchanged(media, 'E_VENDOR_DIGEST');
      expect(message).toContain(`signed the image ${h.app.top.digest}, not ${image.top.digest}`);
    } finally {
      await h.applyPolicy([{ name: 'all', artifacts: ['*'], types: ['vm-image', 'oci-image'] }]);
    }
  });

  it('refuses an older version of the repository (E_ROLLBACK)', async () => {
    const media = await h.secondBundle('rollback', [spec(buildImage({ platforms: TWO_PLATFORMS }), '1.3.0')]);
    const message = await expectRefusedUnchanged(media, 'E_ROLLBACK');
    expect(message).toContain('older than 1.4.0, already installed in repository acme/app');
  });
});
