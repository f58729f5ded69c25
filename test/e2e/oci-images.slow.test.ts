/**
 * Issue 18's proof, through the CLI with real parts: Debian's docker-registry on loopback as the vendor's registry
 * (htpasswd basic auth) holding a two-platform image (linux/amd64, linux/arm64) built offline with umoci and pushed
 * with skopeo, its cosign-format signature under `sha256-<hex>.sig` (made with the project's own signing code: Debian's
 * skopeo cannot sign); `ecluse relay add-image` from it, export, import; then against `ecluse serve --registry-listen`
 * `skopeo inspect` and `skopeo copy ... oci:DIR` give the vendor's manifest digest and `podman pull` (vfs storage)
 * works; the site's own registry (a second docker-registry, `ecluse target add registry`) holds the vendor's digest.
 * A second version sharing the base layers travels with only its new blobs (the bytes on the media are printed) and
 * both versions are served. Then one hostile bundle per way an image can be wrong, re-signed with the site's keys as
 * test/e2e/hostile.test.ts does, each refused with its code and the store unchanged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../conformance/peers.js';
import { hostileSite, type HostileSite } from '../helpers/hostile.js';
import {
  imageOf,
  joinCarried,
  ociArtifactIndex,
  digestOf,
  replaceTopManifest,
  rewriteBundle,
  rewriteImage,
  splitCarried,
} from '../helpers/oci/bundle-surgery.js';
import { privatePodman, skopeoCopyToOci, skopeoInspect, skopeoInspectRaw } from '../helpers/oci/clients.js';
import { makeCosignVendor, pushCosignSignature, type CosignVendor } from '../helpers/oci/cosign.js';
import { buildVendorImage, pushToRegistry, type ImageVersion, type VendorImage } from '../helpers/oci/image.js';
import { startRegistry, type Registry } from '../helpers/oci/registry.js';
import { containersAuthFile } from '../helpers/oci/tools.js';
import {
  bundleOn,
  CLI,
  copyMedia,
  ecluse,
  ecluseOk,
  expectImportRefused,
  PASSPHRASE,
  tmpDir,
  world,
  type World,
} from '../helpers/world.js';

const REPO = 'acme/app';
const KiB = 1024;

let keys: HostileSite;
let vendorRegistry: Registry;
let siteRegistry: Registry;
let built: VendorImage;
let vendor: CosignVendor;
let root: string;

// ---------------------------------------------------------------------------------------------------------------
// Helpers

/** `ecluse relay add-image docker://VENDOR/acme/app:TAG` with the vendor registry's auth file. */
async function addImage(w: World, tag: string, extra: string[] = []) {
  return ecluseOk(
    [
      'relay',
      'add-image',
      `docker://${vendorRegistry.host}/${REPO}:${tag}`,
      '--name',
      'app',
      '--version',
      tag,
      '--authfile',
      vendorRegistry.authFile,
      ...extra,
      '--json',
    ],
    { home: w.outside, timeoutMs: 300_000 },
  );
}

/** The site policy: images of acme/* admitted (platforms as given), the vendor's cosign key pinned when asked. */
function imagePolicy(o: { platforms?: string[]; vendorKey?: boolean } = {}): string {
  const lines = ['version: 1', 'rules:', '  - name: acme-images', '    artifacts: [app]', '    types: [oci-image]'];
  if (o.platforms) lines.push(`    platforms: [${o.platforms.join(', ')}]`);
  if (o.vendorKey) {
    lines.push(
      '    vendorKeys:',
      '      - |',
      ...vendor.publicKeyPem
        .trimEnd()
        .split('\n')
        .map((l) => `        ${l}`),
    );
  }
  lines.push('  - name: rest', "    artifacts: ['*']", '');
  return lines.join('\n');
}

async function applyPolicy(home: string, policy: string, file: string): Promise<void> {
  fs.writeFileSync(file, policy);
  await ecluseOk(['policy', 'apply', file, '--json'], { home });
}

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

interface Serving {
  registry: string;
  stop(): Promise<void>;
}

/** `ecluse serve --listen ... --registry-listen 127.0.0.1:PORT` on the import station. */
async function serve(home: string): Promise<Serving> {
  const [glancePort, registryPort] = [await freePort(), await freePort()];
  let log = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [CLI, 'serve', '--listen', `127.0.0.1:${glancePort}`, '--registry-listen', `127.0.0.1:${registryPort}`],
    { env: { ...process.env, ECLUSE_HOME: home, ECLUSE_PASSPHRASE: PASSPHRASE }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const url = `http://127.0.0.1:${registryPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`ecluse serve exited ${child.exitCode}: ${log}`);
    try {
      if ((await fetch(`${url}/v2/`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`ecluse serve --registry-listen did not answer: ${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    registry: `127.0.0.1:${registryPort}`,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

interface CarriedImage {
  artifact: number;
  carried: string[];
  notCarried: string[];
  artifactBytes: number;
  mediaBytes: number;
}

/** What the bundle on `media` carries of the image: carried and held-already blobs, bytes of the artifact and media. */
function carriedOn(media: string): CarriedImage {
  const bundle = bundleOn(media);
  const statement = JSON.parse(
    Buffer.from(
      (
        JSON.parse(
          fs.readFileSync(path.join(bundle.signaturesDir, fs.readdirSync(bundle.signaturesDir)[0]!), 'utf8'),
        ) as {
          dsseEnvelope: { payload: string };
        }
      ).dsseEnvelope.payload,
      'base64',
    ).toString('utf8'),
  ) as Record<string, unknown>;
  const k = ociArtifactIndex(statement);
  const image = imageOf(statement, k);
  const artifact = (statement.predicate as { artifacts: { size: number }[] }).artifacts[k]!;
  return {
    artifact: k,
    carried: image.blobs.filter((b) => b.carried).map((b) => b.digest),
    notCarried: image.blobs.filter((b) => !b.carried).map((b) => b.digest),
    artifactBytes: artifact.size,
    mediaBytes: bundle.volumes.reduce((s, v) => s + fs.statSync(path.join(bundle.volumesDir, v)).size, 0),
  };
}

const digests = (v: ImageVersion, which: 'blobs' | 'newBlobs' = 'blobs') => v[which].map((b) => b.digest).sort();

// ---------------------------------------------------------------------------------------------------------------

beforeAll(async () => {
  root = tmpDir('ecluse-oci-');
  keys = await hostileSite(path.join(root, 'keys'));
  vendorRegistry = await startRegistry(path.join(root, 'vendor-registry'), { username: 'vendor' });
  siteRegistry = await startRegistry(path.join(root, 'site-registry'), { username: 'ecluse' });
  built = await buildVendorImage(path.join(root, 'build'), {
    versions: ['1.0', '2.0'],
    baseBytes: 768 * KiB,
    appBytes: 96 * KiB,
  });
  vendor = makeCosignVendor();
  for (const v of built.versions) {
    await pushToRegistry(built, v.tag, vendorRegistry, REPO);
    const sig = await vendor.sign(v.index.digest, `${vendorRegistry.host}/${REPO}`);
    await pushCosignSignature(path.join(root, `sig-${v.tag}`), sig, vendorRegistry, REPO);
  }
  fs.writeFileSync(path.join(root, 'vendor-cosign.pub'), vendor.publicKeyPem);
}, 300_000);

afterAll(async () => {
  await vendorRegistry?.stop();
  await siteRegistry?.stop();
  keys?.cleanup();
  if (root) fs.rmSync(root, { recursive: true, force: true });
});

describe('a container image from the vendor registry to the site registry', () => {
  let w: World;
  let served: Serving | undefined;

  beforeAll(async () => {
    w = await world({ keys: keys.keys });
    await applyPolicy(w.inside, imagePolicy({ vendorKey: true }), w.path('policy.yaml'));
    await ecluseOk(
      ['target', 'add', 'registry', siteRegistry.url, '--name', 'site', '--authfile', siteRegistry.authFile, '--json'],
      { home: w.inside },
    );
  }, 120_000);

  afterAll(async () => {
    await served?.stop();
    w?.cleanup();
  });

  it('relay add-image (basic auth), export, import: skopeo, podman and the site registry see the vendor digest', async () => {
    const v1 = built.version('1.0');
    const added = await addImage(w, '1.0', ['--vendor-key', path.join(root, 'vendor-cosign.pub')]);
    expect(JSON.stringify(added.json)).toContain(v1.index.digest);
    await w.exportTo(w.path('media-1'));
    const first = carriedOn(w.path('media-1'));
    console.log(
      `oci proof: version 1.0 — ${first.carried.length} blobs carried, ${first.artifactBytes} bytes of image, ${first.mediaBytes} bytes on the media`,
    );
    expect(first.carried.sort()).toEqual(digests(v1));
    const r = await w.importJson(w.path('media-1'));
    expect(r.code, r.stderr).toBe(0);
    expect((r.json as { targets: unknown[] }).targets).toEqual([
      {
        target: 'site',
        imageId: `${REPO}:1.0`,
        outcome: 'pushed',
        remoteId: `${siteRegistry.host}/${REPO}@${v1.index.digest}`,
        error: null,
      },
    ]);

    served = await serve(w.inside);
    const ref = `docker://${served.registry}/${REPO}:1.0`;
    const raw = await skopeoInspectRaw(ref);
    expect(raw.digest).toBe(v1.index.digest);
    expect(raw.raw.equals(built.blob(v1.index.digest))).toBe(true);
    for (const arch of ['amd64', 'arm64']) {
      const s = await skopeoInspect(ref, { arch });
      expect(s).toMatchObject({ Digest: v1.index.digest, Architecture: arch, Os: 'linux' });
      expect(s.Layers).toEqual(v1.manifests.find((m) => m.platform.architecture === arch)!.layers.map((l) => l.digest));
    }
    expect(await skopeoCopyToOci(ref, w.path('copied'), '1.0')).toBe(v1.index.digest);

    const podman = privatePodman(w.path('podman'));
    try {
      await podman.pull(`${served.registry}/${REPO}:1.0`, { arch: 'arm64' });
      expect(await podman.digestOf(`${served.registry}/${REPO}:1.0`)).toBe(v1.index.digest);
    } finally {
      podman.cleanup();
    }

    const atSite = await skopeoInspectRaw(`docker://${siteRegistry.host}/${REPO}:1.0`, {
      authFile: siteRegistry.authFile,
    });
    expect(atSite.digest).toBe(v1.index.digest);
    const list = (await ecluseOk(['target', 'list', '--json'], { home: w.inside })).json as {
      targets: { name: string; pushes: { image_id: string; status: string; remote_id: string }[] }[];
    };
    expect(list.targets.find((t) => t.name === 'site')!.pushes).toEqual([
      expect.objectContaining({
        image_id: `${REPO}:1.0`,
        status: 'active',
        remote_id: `${siteRegistry.host}/${REPO}@${v1.index.digest}`,
      }),
    ]);
    // Pushed again by hand: every blob is already there, only the manifests are sent; the digest is still the vendor's.
    const again = await ecluseOk(['target', 'push', '--image', `${REPO}:1.0`, '--target', 'site', '--json'], {
      home: w.inside,
    });
    expect((again.json as { pushes: { ok: boolean; message: string }[] }).pushes).toEqual([
      expect.objectContaining({ ok: true, message: expect.stringContaining('0 blob(s) uploaded') as unknown }),
    ]);
  }, 300_000);

  it('relay add-image from a registry with bearer tokens (the auth file, the token service asked for pull)', async () => {
    const bearer = await startRegistry(path.join(root, 'bearer-vendor'), { auth: 'bearer', username: 'vendor' });
    try {
      await pushToRegistry(built, '1.0', bearer, 'acme/bearer');
      const r = await ecluseOk(
        [
          'relay',
          'add-image',
          `docker://${bearer.host}/acme/bearer:1.0`,
          '--name',
          'bearer-app',
          '--version',
          '1.0',
          '--authfile',
          bearer.authFile,
          '--json',
        ],
        { home: w.path('outside-bearer'), timeoutMs: 300_000 },
      );
      expect(JSON.stringify(r.json)).toContain(built.version('1.0').index.digest);
      expect(bearer.tokenRequests).toContainEqual({ scope: 'repository:acme/bearer:pull', authorized: true });
      const wrong = path.join(root, 'wrong-auth.json');
      fs.writeFileSync(wrong, containersAuthFile({ [bearer.host]: { username: 'vendor', password: 'nope' } }));
      const refused = await ecluse(
        [
          'relay',
          'add-image',
          `docker://${bearer.host}/acme/bearer:1.0`,
          '--name',
          'x',
          '--version',
          '1',
          '--authfile',
          wrong,
          '--json',
        ],
        { home: w.path('outside-bearer'), timeoutMs: 300_000 },
      );
      expect(refused.code).toBe(3);
      expect(refused.json).toMatchObject({ ok: false, code: 'E_FEED' });
      expect((refused.json as { message: string }).message).toContain('invalid username/password');
    } finally {
      await bearer.stop();
    }
  }, 300_000);

  it('a second version sharing the base layers carries only its new blobs; both versions are served', async () => {
    const [v1, v2] = [built.version('1.0'), built.version('2.0')];
    const out = { home: w.outside };
    await ecluseOk(['receipt', 'key', '--out', w.path('receipt.pub'), '--json'], { home: w.inside });
    await ecluseOk(['relay', 'receipt', 'trust', w.path('receipt.pub'), '--site', w.site, '--json'], out);
    await ecluseOk(['receipt', 'export', '--to', w.path('back-1'), '--json'], { home: w.inside });
    await ecluseOk(['relay', 'receipt', 'import', w.path('back-1'), '--json'], out);

    await addImage(w, '2.0', ['--vendor-key', path.join(root, 'vendor-cosign.pub')]);
    await w.exportTo(w.path('media-2'));
    const first = carriedOn(w.path('media-1'));
    const second = carriedOn(w.path('media-2'));
    const sharedBytes = v2.blobs.filter((b) => !v2.newBlobs.includes(b)).reduce((s, b) => s + b.size, 0);
    console.log(
      `oci proof: version 2.0 — ${second.carried.length} of ${v2.blobs.length} blobs carried, ${second.artifactBytes} bytes of image ` +
        `(${sharedBytes} bytes of shared base layers not carried), ${second.mediaBytes} bytes on the media ` +
        `(version 1.0 took ${first.mediaBytes})`,
    );
    expect(second.carried.sort()).toEqual(digests(v2, 'newBlobs'));
    expect(second.notCarried.sort()).toEqual(v1.manifests.map((m) => m.layers[0]!.digest).sort());
    expect(second.artifactBytes).toBe(v2.newBlobs.reduce((s, b) => s + b.size, 0));
    expect(second.mediaBytes).toBeLessThan(first.mediaBytes - sharedBytes / 2);

    const r = await w.importJson(w.path('media-2'));
    expect(r.code, r.stderr).toBe(0);
    for (const v of [v1, v2]) {
      expect((await skopeoInspectRaw(`docker://${served!.registry}/${REPO}:${v.tag}`)).digest).toBe(v.index.digest);
      const atSite = await skopeoInspectRaw(`docker://${siteRegistry.host}/${REPO}:${v.tag}`, {
        authFile: siteRegistry.authFile,
      });
      expect(atSite.digest).toBe(v.index.digest);
    }
    const tags = (await (await fetch(`http://${served!.registry}/v2/${REPO}/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['1.0', '2.0']);
  }, 300_000);
});

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
    const media = copyMedia(good, w.path('nested'));
    await rewriteBundle(bundleOn(media), [keys.alice], (statement, streams) => {
      withoutEvidence(statement);
      const k = ociArtifactIndex(statement);
      const image = imageOf(statement, k);
      const bytes = splitCarried(image, streams[k]!);
      const top = JSON.parse(bytes.get(image.digest)!.toString()) as Record<string, unknown>;
      replaceTopManifest(image, bytes, Buffer.from(JSON.stringify({ ...top, annotations: { x: nested } })));
      streams[k] = joinCarried(image, bytes);
    });
    await expectImageRefused(w, media, 'E_IMAGE_MANIFEST');
  });

  it('E_IMAGE_MANIFEST: a manifest over 4 MiB, the top one or a child one', async () => {
    const padding = { padding: 'x'.repeat(4 * 1024 * 1024) };
    const top = copyMedia(good, w.path('oversized-top'));
    await rewriteBundle(bundleOn(top), [keys.alice], (statement, streams) => {
      withoutEvidence(statement);
      const k = ociArtifactIndex(statement);
      const image = imageOf(statement, k);
      const bytes = splitCarried(image, streams[k]!);
      const index = JSON.parse(bytes.get(image.digest)!.toString()) as Record<string, unknown>;
      replaceTopManifest(image, bytes, Buffer.from(JSON.stringify({ ...index, annotations: padding })));
      streams[k] = joinCarried(image, bytes);
    });
    const r = await expectImageRefused(w, top, 'E_IMAGE_MANIFEST');
    expect(r.stderr).toMatch(/4194304|4 MiB/);

    const child = copyMedia(good, w.path('oversized-child'));
    const amd64 = built.version('1.0').manifests[0]!.descriptor;
    await rewriteBundle(bundleOn(child), [keys.alice], (statement, streams) => {
      withoutEvidence(statement);
      const k = ociArtifactIndex(statement);
      const image = imageOf(statement, k);
      const bytes = splitCarried(image, streams[k]!);
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
      streams[k] = joinCarried(image, bytes);
    });
    const rc = await expectImageRefused(w, child, 'E_IMAGE_MANIFEST');
    expect(rc.stderr).toMatch(/4194304|4 MiB/);
  });

  it('E_IMAGE_MANIFEST: an index with 257 entries', async () => {
    const media = copyMedia(good, w.path('wide'));
    await rewriteBundle(bundleOn(media), [keys.alice], (statement, streams) => {
      withoutEvidence(statement);
      const k = ociArtifactIndex(statement);
      const image = imageOf(statement, k);
      const bytes = splitCarried(image, streams[k]!);
      const top = JSON.parse(bytes.get(image.digest)!.toString()) as { manifests: { platform: object }[] };
      const first = top.manifests[0]!;
      const manifests = Array.from({ length: 257 }, (_, i) =>
        i < top.manifests.length ? top.manifests[i] : { ...first, platform: { os: 'linux', architecture: `arch${i}` } },
      );
      replaceTopManifest(image, bytes, Buffer.from(JSON.stringify({ ...top, manifests })));
      streams[k] = joinCarried(image, bytes);
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
