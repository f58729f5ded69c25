/**
 * Issue 18's proof, through the CLI with real parts: Debian's docker-registry on loopback as the vendor's registry
 * (htpasswd basic auth) holding a two-platform image (linux/amd64, linux/arm64) built offline with umoci and pushed
 * with skopeo, its cosign-format signature under `sha256-<hex>.sig` (made with the project's own signing code: Debian's
 * skopeo cannot sign); `ecluse relay add-image` from it, export, import; then against `ecluse serve --registry-listen`
 * `skopeo inspect` and `skopeo copy ... oci:DIR` give the vendor's manifest digest and `podman pull` (vfs storage)
 * works; the site's own registry (a second docker-registry, `ecluse target add registry`) holds the vendor's digest.
 * A second version sharing the base layers travels with only its new blobs (the bytes on the media are printed) and
 * both versions are served. The hostile images (each refused with its code, the store unchanged) are in
 * oci-images-hostile.slow.test.ts; the registries, the image and the steps both files take are
 * test/helpers/oci-images-world.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../conformance/peers.js';
import { imageOf, ociArtifactIndex } from '../helpers/oci/bundle-surgery.js';
import { privatePodman, skopeoCopyToOci, skopeoInspect, skopeoInspectRaw } from '../helpers/oci/clients.js';
import { pushToRegistry, type ImageVersion } from '../helpers/oci/image.js';
import { startRegistry } from '../helpers/oci/registry.js';
import { containersAuthFile } from '../helpers/oci/tools.js';
import {
  addImage,
  applyPolicy,
  built,
  imagePolicy,
  keys,
  ociImagesWorld,
  REPO,
  root,
  siteRegistry,
} from '../helpers/oci-images-world.js';
import { bundleOn, CLI, ecluse, ecluseOk, PASSPHRASE, world, type World } from '../helpers/world.js';

ociImagesWorld({ site: true });

// ---------------------------------------------------------------------------------------------------------------
// Helpers

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
