/**
 * Issue 18's container images, hostile: one bundle per way an image can be wrong, made from a good bundle that
 * `ecluse relay add-image` took from the vendor's registry (Debian's docker-registry on loopback, the two-platform image
 * pushed with skopeo, its cosign signature pinned) and re-signed with the site's keys as test/e2e/hostile.test.ts does,
 * each refused with its code and the registry store (files and rows) unchanged. The journey of a good image is
 * oci-images.slow.test.ts; the registries, the image and the steps both files take are test/helpers/oci-images-world.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ociArtifactIndex,
  digestOf,
  replaceTopManifest,
  rewriteBundle,
  rewriteImage,
} from '../helpers/oci/bundle-surgery.js';
import {
  addImage,
  applyPolicy,
  built,
  imagePolicy,
  keys,
  ociImagesWorld,
  REPO,
  root,
  vendor,
  vendorRegistry,
} from '../helpers/oci-images-world.js';
import { bundleOn, copyMedia, expectImportRefused, world, type World } from '../helpers/world.js';

ociImagesWorld({ site: false });

// ---------------------------------------------------------------------------------------------------------------
// Helpers

interface RegistryState {
  files: string[];
  images: unknown[];
  blobs: unknown[];
  members: unknown[];
}

/** Everything the registry store holds: its files and its rows (a refused import must leave all of it as it was). */
function registryState(home: string): RegistryState {
  const dir = path.join(home, 'registry');
  const files = fs.existsSync(dir)
    ? fs
        .readdirSync(dir, { recursive: true, withFileTypes: true })
        .map((d) => path.relative(dir, path.join(d.parentPath, d.name)))
        .sort()
    : [];
  const db = new Database(path.join(home, 'ecluse.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const rows = (table: string) => db.prepare(`SELECT * FROM ${table} ORDER BY rowid`).all();
    return {
      files,
      images: rows('container_images'),
      blobs: rows('registry_blobs'),
      members: rows('container_image_blobs'),
    };
  } finally {
    db.close();
  }
}

/** The refusal contract of world.ts plus the registry store unchanged. */
async function expectImageRefused(w: World, media: string, code: string, home = w.inside) {
  const before = registryState(home);
  const r = await expectImportRefused(w, media, code, home);
  expect(registryState(home)).toEqual(before);
  return r;
}

// ---------------------------------------------------------------------------------------------------------------

describe('hostile images: each refused with its code, the store unchanged', () => {
  let w: World;
  let good: string;

  beforeAll(async () => {
    w = await world({ keys: keys.keys });
    await addImage(w, '1.0', ['--vendor-key', path.join(root, 'vendor-cosign.pub')]);
    good = w.path('good');
    await w.exportTo(good);
  }, 120_000);

  afterAll(() => w?.cleanup());

  let n = 0;
  /** A copy of the good bundle, changed by `edit` and re-signed by alice. */
  async function tampered(edit: Parameters<typeof rewriteImage>[2]): Promise<string> {
    const media = copyMedia(good, w.path(`hostile-${++n}`));
    await rewriteImage(bundleOn(media), [keys.alice], edit);
    return media;
  }

  /** Vendor evidence names the original digest: a test that changes the image drops it (one fault at a time). */
  function withoutEvidence(statement: Record<string, unknown>): void {
    const a = (statement.predicate as { artifacts: { provenance: Record<string, unknown> }[] }).artifacts[
      ociArtifactIndex(statement)
    ]!;
    delete a.provenance.evidence;
  }

  it('the surgery alone changes nothing: the re-signed, re-assembled good bundle is accepted elsewhere', async () => {
    const media = copyMedia(good, w.path('unchanged'));
    await rewriteBundle(bundleOn(media), [keys.alice], () => undefined);
    const home = await w.newInside('inside-unchanged');
    const r = await w.importJson(media, home);
    expect(r.code, r.stderr).toBe(0);
    expect(registryState(home).images).toHaveLength(1);
  });

  it('E_DIGEST: a layer whose bytes do not match its digest (one byte changed)', async () => {
    const layer = built.version('1.0').manifests[1]!.layers[1]!;
    const media = await tampered((_image, bytes) => {
      const b = Buffer.from(bytes.get(layer.digest)!);
      b[100] = b[100]! ^ 0xff;
      bytes.set(layer.digest, b);
    });
    const r = await expectImageRefused(w, media, 'E_DIGEST');
    expect(r.stderr).toContain(layer.digest);
  });

  it('E_IMAGE_BLOB_MISSING: a manifest naming a blob that is not in the bundle', async () => {
    const layer = built.version('1.0').manifests[0]!.layers[1]!;
    const media = await tampered((image, bytes) => {
      image.blobs = image.blobs.filter((b) => b.digest !== layer.digest);
      bytes.delete(layer.digest);
    });
    const r = await expectImageRefused(w, media, 'E_IMAGE_BLOB_MISSING');
    expect(r.stderr).toContain(layer.digest);
  });

  it('E_NOT_ALLOWED: a platform the policy refuses (linux/arm64 at a site that admits linux/amd64 only)', async () => {
    const home = await w.newInside('inside-amd64-only');
    await applyPolicy(home, imagePolicy({ platforms: ['linux/amd64'] }), w.path('policy-amd64.yaml'));
    const r = await expectImageRefused(w, copyMedia(good, w.path('platform')), 'E_NOT_ALLOWED', home);
    expect(r.stderr).toContain('linux/arm64');
  });

  it('E_IMAGE_MANIFEST: a top manifest nested deeper than 16 levels', async () => {
    let nested: unknown = 'deep';
    for (let i = 0; i < 40; i++) nested = { n: nested };
    const media = await tampered((image, bytes, statement) => {
      withoutEvidence(statement);
      const top = JSON.parse(bytes.get(image.digest)!.toString()) as Record<string, unknown>;
      replaceTopManifest(image, bytes, Buffer.from(JSON.stringify({ ...top, annotations: { x: nested } })));
    });
    await expectImageRefused(w, media, 'E_IMAGE_MANIFEST');
  });

  it('E_IMAGE_MANIFEST: a manifest over 4 MiB, the top one or a child one', async () => {
    const padding = { padding: 'x'.repeat(4 * 1024 * 1024) };
    const top = await tampered((image, bytes, statement) => {
      withoutEvidence(statement);
      const index = JSON.parse(bytes.get(image.digest)!.toString()) as Record<string, unknown>;
      replaceTopManifest(image, bytes, Buffer.from(JSON.stringify({ ...index, annotations: padding })));
    });
    const r = await expectImageRefused(w, top, 'E_IMAGE_MANIFEST');
    expect(r.stderr).toMatch(/4194304|4 MiB/);

    const amd64 = built.version('1.0').manifests[0]!.descriptor;
    const child = await tampered((image, bytes, statement) => {
      withoutEvidence(statement);
      const manifest = JSON.parse(bytes.get(amd64.digest)!.toString()) as Record<string, unknown>;
      const big = Buffer.from(JSON.stringify({ ...manifest, annotations: padding }));
      const listed = image.blobs.find((b) => b.digest === amd64.digest)!;
      Object.assign(listed, { digest: digestOf(big), size: big.length });
      bytes.delete(amd64.digest);
      bytes.set(listed.digest, big);
      const index = JSON.parse(bytes.get(image.digest)!.toString()) as {
        manifests: { digest: string; size: number }[];
      };
      Object.assign(index.manifests[0]!, { digest: listed.digest, size: big.length });
      replaceTopManifest(image, bytes, Buffer.from(JSON.stringify(index)));
    });
    const rc = await expectImageRefused(w, child, 'E_IMAGE_MANIFEST');
    expect(rc.stderr).toMatch(/4194304|4 MiB/);
  });

  it('E_IMAGE_MANIFEST: an index with 257 entries', async () => {
    const media = await tampered((image, bytes, statement) => {
      withoutEvidence(statement);
      const top = JSON.parse(bytes.get(image.digest)!.toString()) as { manifests: { platform: object }[] };
      const first = top.manifests[0]!;
      const manifests = Array.from({ length: 257 }, (_, i) =>
        i < top.manifests.length ? top.manifests[i] : { ...first, platform: { os: 'linux', architecture: `arch${i}` } },
      );
      replaceTopManifest(image, bytes, Buffer.from(JSON.stringify({ ...top, manifests })));
    });
    await expectImageRefused(w, media, 'E_IMAGE_MANIFEST');
  });

  it('E_VENDOR_DIGEST: a vendor signature (valid, by the pinned key) over another digest', async () => {
    const home = await w.newInside('inside-pinned');
    await applyPolicy(home, imagePolicy({ vendorKey: true }), w.path('policy-pinned.yaml'));
    const other = await vendor.sign(built.version('2.0').index.digest, `${vendorRegistry.host}/${REPO}`);
    const media = copyMedia(good, w.path('other-digest'));
    await rewriteBundle(bundleOn(media), [keys.alice], (statement) => {
      const a = (statement.predicate as { artifacts: { provenance: { evidence?: Record<string, unknown> } }[] })
        .artifacts[ociArtifactIndex(statement)]!;
      expect(a.provenance.evidence).toMatchObject({ kind: 'cosign' });
      a.provenance.evidence = {
        kind: 'cosign',
        payload: other.payload.toString('base64'),
        bundle: Buffer.from(other.bundle).toString('base64'),
      };
    });
    expect(other.payload.toString()).toContain(built.version('2.0').index.digest);
    const r = await expectImageRefused(w, media, 'E_VENDOR_DIGEST', home);
    expect(r.stderr).toContain(built.version('1.0').index.digest);
  });
});
