/**
 * Import of oci-image artifacts through the real CLI (issue 18): statements built in the test from images built byte
 * by byte (test/helpers/oci-image.ts), on bundles written by `ecluse export` and re-signed by the site's signer.
 *
 *   - a two-platform image is imported, served by `ecluse serve --registry-listen` (the real skopeo reads the vendor's
 *     digest), counted by `status --json`, listed in the receipt's `inventory.blobs` and `inventory.artifacts`;
 *   - one refusal per way an image can be wrong, each with its code and the store (images, registry rows and blob
 *     files, staging) exactly as it was;
 *   - a second version sharing its base layers carries only its new blobs, under a policy pinning the vendor's cosign
 *     key; both versions are served.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSigner, type LoadedSigner } from '../../keys/signer.js';
import { makeSigstoreVendor } from '../relay/vendor-fixtures.js';
import { freePort } from '../conformance/peers.js';
import { rewriteAsOciBundle, registrySnapshot, type OciArtifactSpec } from '../helpers/oci-bundle.js';
import { blobOf, buildImage, OCI_INDEX, OCI_MANIFEST, type TestImage } from '../helpers/oci-image.js';
import {
  auditSince,
  bundleOn,
  CLI,
  copyMedia,
  ecluse,
  ecluseOk,
  expectImportRefused,
  lastAuditSeq,
  makeKeys,
  PASSPHRASE,
  snapshot,
  world,
  type World,
} from '../helpers/world.js';

const run = promisify(execFile);
let w: World;
let alice: LoadedSigner;
let first: string;
let second: string;
let app: TestImage;
/** The sha256 of the statement of the accepted first bundle (the second names it as its predecessor). */
let firstStatement: string;
const vendor = makeSigstoreVendor();

const TWO_PLATFORMS = [
  { os: 'linux', architecture: 'amd64' },
  { os: 'linux', architecture: 'arm64', variant: 'v8' },
];

function spec(image: TestImage, version: string, more: Partial<OciArtifactSpec> = {}): OciArtifactSpec {
  return { image, name: 'acme-app', version, repository: 'acme/app', tag: version, ...more };
}

/** A copy of the second exported bundle rewritten into `specs` (chained to the accepted first one). */
async function secondBundle(name: string, specs: OciArtifactSpec[]): Promise<string> {
  const media = copyMedia(second, w.path(name));
  await rewriteAsOciBundle(bundleOn(media), alice, specs, (s) => {
    const previous = (s.predicate as { previous: { statementSha256: string } }).previous;
    previous.statementSha256 = firstStatement;
  });
  return media;
}

async function expectRefusedUnchanged(media: string, code: string): Promise<string> {
  const before = registrySnapshot(w.inside);
  const r = await expectImportRefused(w, media, code);
  expect(registrySnapshot(w.inside)).toEqual(before);
  return (JSON.parse(r.stdout) as { message: string }).message;
}

async function applyPolicy(rules: unknown[]): Promise<void> {
  const file = w.path(`policy-${crypto.randomUUID()}.json`);
  fs.writeFileSync(file, JSON.stringify({ version: 1, rules }));
  await ecluseOk(['policy', 'apply', file, '--json'], { home: w.inside });
}

const vmRule = { name: 'vm', artifacts: ['seed'], types: ['vm-image'] };

beforeAll(async () => {
  w = await world({ keys: await makeKeys(fs.mkdtempSync('/tmp/ecluse-oci-keys-')) });
  alice = await loadSigner(w.keys.signer('alice'), () => Promise.resolve(PASSPHRASE));
  await w.addImage('seed', '1', 4096);
  first = w.path('m1');
  await w.exportTo(first);
  await w.addImage('seed', '2', 4096);
  second = w.path('m2');
  await w.exportTo(second);
  app = buildImage({ platforms: TWO_PLATFORMS, layers: 3, layerSize: 20_000 });
});

afterAll(() => w?.cleanup());

describe('import of oci-image artifacts', () => {
  it('imports a two-platform image: served with the vendor digest, counted, listed in the receipt', async () => {
    const media = copyMedia(first, w.path('good-1'));
    await rewriteAsOciBundle(bundleOn(media), alice, [spec(app, '1.4.0')]);
    // verify reads and checks every blob, writing nothing
    const before = registrySnapshot(w.inside);
    const verified = await ecluse(['verify', media, '--json'], { home: w.inside });
    expect(verified.code, verified.stderr).toBe(0);
    expect((verified.json as { checks: Array<{ check: string }> }).checks.map((c) => c.check)).toEqual(
      expect.arrayContaining(['image-blobs', 'image-contents']),
    );
    expect(registrySnapshot(w.inside)).toEqual(before);
    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { containerImages: unknown[]; bundle: { statementSha256: string } };
    firstStatement = out.bundle.statementSha256;
    expect(out.containerImages).toEqual([
      {
        name: 'acme-app',
        version: '1.4.0',
        repository: 'acme/app',
        tag: '1.4.0',
        digest: app.top.digest,
        mediaType: OCI_INDEX,
        platforms: ['linux/amd64', 'linux/arm64/v8'],
        blobs: app.blobs.length,
        carriedBlobs: app.blobs.length,
        size: app.blobs.reduce((n, b) => n + b.size, 0),
      },
    ]);
    const files = registrySnapshot(w.inside).files;
    expect(files).toEqual(app.blobs.map((b) => b.digest.slice(7)).sort());
    const status = await ecluseOk(['status', '--json'], { home: w.inside });
    expect((status.json as { registry: unknown }).registry).toEqual({
      images: 1,
      repositories: 1,
      blobs: app.blobs.length,
      bytes: app.blobs.reduce((n, b) => n + b.size, 0),
    });
    // the receipt lists the image and every blob held
    const receipts = w.path('receipt-1');
    fs.mkdirSync(receipts);
    const written = await ecluseOk(['receipt', 'export', '--to', receipts, '--json'], { home: w.inside });
    const file = (written.json as { receipt: { file: string } }).receipt.file;
    const envelope = JSON.parse(fs.readFileSync(file, 'utf8')) as { dsseEnvelope: { payload: string } };
    const receipt = JSON.parse(Buffer.from(envelope.dsseEnvelope.payload, 'base64').toString('utf8')) as {
      inventory: { artifacts: Array<{ name: string }>; blobs: string[] };
    };
    expect(receipt.inventory.blobs).toEqual(app.blobs.map((b) => b.digest.slice(7)).sort());
    expect(receipt.inventory.artifacts.map((a) => a.name)).toContain('acme-app');
  });

  it('serves it through `ecluse serve --registry-listen`: skopeo gets the vendor digest and bytes', async () => {
    const port = await freePort();
    const glancePort = await freePort();
    const server: ChildProcess = spawn(
      process.execPath,
      [
        CLI,
        '--home',
        w.inside,
        'serve',
        '--listen',
        `127.0.0.1:${glancePort}`,
        '--registry-listen',
        `127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let err = '';
        server.stderr?.on('data', (d: Buffer) => {
          err += d.toString();
          if (err.includes('serving the container registry')) resolve();
        });
        server.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
      });
      const ref = `docker://127.0.0.1:${port}/acme/app:1.4.0`;
      const env = { ...process.env, HOME: w.root };
      const raw = await run('skopeo', ['--insecure-policy', 'inspect', '--raw', '--tls-verify=false', ref], { env });
      expect(Buffer.from(raw.stdout).equals(app.top.bytes)).toBe(true);
      const inspected = JSON.parse(
        (await run('skopeo', ['--insecure-policy', 'inspect', '--tls-verify=false', ref], { env })).stdout,
      ) as { Digest: string };
      expect(inspected.Digest).toBe(app.top.digest);
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('serve --registry-listen: a bad address, the Glance address, or a taken port each said in one line', async () => {
    const bad = await ecluse(['serve', '--registry-listen', 'nope'], { home: w.inside });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('E_USAGE: --registry-listen wants HOST:PORT with a port from 0 to 65535');
    const same = await ecluse(['serve', '--listen', '127.0.0.1:5999', '--registry-listen', '127.0.0.1:5999'], {
      home: w.inside,
    });
    expect(same.code).toBe(2);
    expect(same.stderr).toContain('E_USAGE: --registry-listen must differ from --listen');
    const taken = http.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    try {
      const port = (taken.address() as AddressInfo).port;
      const glancePort = await freePort();
      const busy = await ecluse(
        ['serve', '--listen', `127.0.0.1:${glancePort}`, '--registry-listen', `127.0.0.1:${port}`],
        { home: w.inside },
      );
      expect(busy.code).toBe(3);
      expect(busy.stderr).toContain(
        `E_ADDRESS_IN_USE: 127.0.0.1:${port} is already in use by another program: stop it, or give another port with --registry-listen`,
      );
    } finally {
      taken.close();
    }
  });

  it('refuses a blob whose bytes do not match its digest (E_DIGEST naming the blob)', async () => {
    const layer = app.blobs[app.blobs.length - 1] as (typeof app.blobs)[number];
    const media = await secondBundle('bad-digest', [spec(app, '1.5.0', { corrupt: layer.digest })]);
    const message = await expectRefusedUnchanged(media, 'E_DIGEST');
    expect(message).toContain(`the blob ${layer.digest}`);
  });

  it('refuses a manifest naming a blob the statement does not list (E_IMAGE_BLOB_MISSING)', async () => {
    const image = buildImage({ platforms: TWO_PLATFORMS });
    const layer = image.blobs[image.blobs.length - 1] as (typeof image.blobs)[number];
    const media = await secondBundle('unlisted', [spec(image, '1.5.0', { unlisted: new Set([layer.digest]) })]);
    const message = await expectRefusedUnchanged(media, 'E_IMAGE_BLOB_MISSING');
    expect(message).toContain(`needs the blob ${layer.digest}, which its statement does not list`);
  });

  it('refuses a listed blob that is neither carried nor held, before reading any volume', async () => {
    const image = buildImage({ platforms: TWO_PLATFORMS });
    const layer = image.blobs[image.blobs.length - 1] as (typeof image.blobs)[number];
    const media = await secondBundle('not-held', [spec(image, '1.5.0', { notCarried: new Set([layer.digest]) })]);
    // no volume at all: the refusal comes from the statement, not from reading
    const b = bundleOn(media);
    for (const v of b.volumes) fs.rmSync(path.join(b.volumesDir, v));
    const message = await expectRefusedUnchanged(media, 'E_IMAGE_BLOB_MISSING');
    expect(message).toMatch(
      /does not carry and this station does not hold .*; export a replacement outside: ecluse export --replace 2 /,
    );
  });

  it('refuses a platform the policy does not admit (E_NOT_ALLOWED naming the platform and rule)', async () => {
    await applyPolicy([
      vmRule,
      { name: 'amd64-only', artifacts: ['*'], types: ['oci-image'], platforms: ['linux/amd64'] },
    ]);
    try {
      const media = await secondBundle('platform', [spec(buildImage({ platforms: TWO_PLATFORMS }), '1.5.0')]);
      const message = await expectRefusedUnchanged(media, 'E_NOT_ALLOWED');
      expect(message).toContain('platform linux/arm64/v8 is not one of linux/amd64 (policy rule amd64-only)');
    } finally {
      await applyPolicy([{ name: 'all', artifacts: ['*'], types: ['vm-image', 'oci-image'] }]);
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
      const media = await secondBundle(`manifest-${label}`, [spec(image, '1.5.0')]);
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
    const media = await secondBundle('index-entries', [spec(image, '1.5.0')]);
    const message = await expectRefusedUnchanged(media, 'E_IMAGE_MANIFEST');
    expect(message).toMatch(/manifests: Too big: expected array to have <=256 items/);
  });

  it('refuses a vendor cosign signature over another digest (E_VENDOR_DIGEST)', async () => {
    await applyPolicy([
      vmRule,
      { name: 'acme', artifacts: ['acme-*'], types: ['oci-image'], vendorKeys: [vendor.publicKeyPem] },
    ]);
    try {
      const image = buildImage({ platforms: TWO_PLATFORMS });
      const media = await secondBundle('cosign-other', [
        spec(image, '1.5.0', { evidence: await cosignEvidence(app.top.digest) }),
      ]);
      const message = await expectRefusedUnchanged(media, 'E_VENDOR_DIGEST');
      expect(message).toContain(`signed the image ${app.top.digest}, not ${image.top.digest}`);
    } finally {
      await applyPolicy([{ name: 'all', artifacts: ['*'], types: ['vm-image', 'oci-image'] }]);
    }
  });

  it('refuses an older version of the repository (E_ROLLBACK)', async () => {
    const media = await secondBundle('rollback', [spec(buildImage({ platforms: TWO_PLATFORMS }), '1.3.0')]);
    const message = await expectRefusedUnchanged(media, 'E_ROLLBACK');
    expect(message).toContain('older than 1.4.0, already installed in repository acme/app');
  });

  it('a second version sharing its base layers carries only its new blobs; both versions are served', async () => {
    await applyPolicy([
      vmRule,
      { name: 'acme', artifacts: ['acme-*'], types: ['oci-image'], vendorKeys: [vendor.publicKeyPem] },
    ]);
    const next = buildImage({ platforms: TWO_PLATFORMS, layers: 1, layerSize: 20_000, base: app.layers, label: 'v2' });
    const held = new Set(app.blobs.map((b) => b.digest));
    const shared = new Set(next.blobs.filter((b) => held.has(b.digest)).map((b) => b.digest));
    expect(shared.size).toBe(6); // three base layers per platform
    const media = await secondBundle('v2', [
      spec(next, '1.5.0', { notCarried: shared, evidence: await cosignEvidence(next.top.digest) }),
    ]);
    const seq = lastAuditSeq(w.inside);
    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    const carried = next.blobs.filter((b) => !shared.has(b.digest)).reduce((n, b) => n + b.size, 0);
    const total = next.blobs.reduce((n, b) => n + b.size, 0);
    console.log(`second version: ${carried} bytes carried of ${total} (${shared.size} shared blobs not carried)`);
    expect(
      (JSON.parse(r.stdout) as { containerImages: Array<{ carriedBlobs: number }> }).containerImages[0]?.carriedBlobs,
    ).toBe(next.blobs.length - shared.size);
    expect(auditSince(w.inside, seq).map((a) => a.kind)).toContain('container-image.promoted');
    expect(auditSince(w.inside, seq).find((a) => a.kind === 'check.vendor-evidence')?.message).toContain('cosign');
    const files = new Set(registrySnapshot(w.inside).files);
    for (const b of [...app.blobs, ...next.blobs]) expect(files.has(b.digest.slice(7))).toBe(true);
    expect(snapshot(w.inside).staging).toEqual([]);
  });

  it('store check verifies every blob; --repair removes an orphan blob, never a recorded one', async () => {
    expect((await ecluse(['store', 'check', '--json'], { home: w.inside })).code).toBe(0);
    const blobs = w.path('inside', 'registry', 'blobs', 'sha256');
    const orphan = path.join(blobs, 'f'.repeat(64));
    fs.writeFileSync(orphan, 'left by a crash');
    const layer = app.blobs[app.blobs.length - 1] as (typeof app.blobs)[number];
    const damaged = path.join(blobs, layer.digest.slice(7));
    fs.writeFileSync(damaged, Buffer.alloc(layer.size));
    const check = await ecluse(['store', 'check', '--repair', '--json'], { home: w.inside });
    expect(check.code).toBe(1);
    const problems = (check.json as { context?: unknown; message: string }).message;
    expect(problems).toContain(`digest-mismatch ${layer.digest}`);
    expect(fs.existsSync(orphan)).toBe(false);
    expect(fs.existsSync(damaged)).toBe(true);
  });
});

/** cosign evidence as the export station carries it: the simple-signing payload naming `digest`, signed by the vendor. */
async function cosignEvidence(digest: string): Promise<Record<string, unknown>> {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': 'vendor.example:5000/acme/app' },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
  return {
    kind: 'cosign',
    payload: payload.toString('base64'),
    bundle: Buffer.from(await vendor.signBlob(payload)).toString('base64'),
  };
}
