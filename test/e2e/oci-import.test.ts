/**
 * Import of oci-image artifacts through the real CLI (issue 18): statements built in the test from images built byte
 * by byte (test/helpers/oci-image.ts), on bundles written by `ecluse export` and re-signed by the site's signer.
 *
 *   - a two-platform image is imported, served by `ecluse serve --registry-listen` (the real skopeo reads the vendor's
 *     digest), counted by `status --json`, listed in the receipt's `inventory.blobs` and `inventory.artifacts`;
 *   - a second version sharing its base layers carries only its new blobs, under a policy pinning the vendor's cosign
 *     key; both versions are served;
 *   - `store check` verifies every blob, and `--repair` removes an orphan blob, never a recorded one.
 *
 * The refusals (one per way an image can be wrong) are in oci-import-refusals.test.ts; the shared setup is
 * test/helpers/oci-world.ts.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { freePort } from '../conformance/peers.js';
import { rewriteAsOciBundle, registrySnapshot } from '../helpers/oci-bundle.js';
import { buildImage, OCI_INDEX } from '../helpers/oci-image.js';
import { cosignEvidence, ociWorld, spec, TWO_PLATFORMS, vendor, vmRule } from '../helpers/oci-world.js';
import { auditSince, bundleOn, CLI, copyMedia, ecluse, ecluseOk, lastAuditSeq, snapshot } from '../helpers/world.js';

const run = promisify(execFile);
const h = ociWorld();

describe('import of oci-image artifacts', () => {
  it('imports a two-platform image: served with the vendor digest, counted, listed in the receipt', async () => {
    const media = copyMedia(h.first, h.w.path('good-1'));
    await rewriteAsOciBundle(bundleOn(media), h.alice, [spec(h.app, '1.4.0')]);
    // verify reads and checks every blob, writing nothing
    const before = registrySnapshot(h.w.inside);
    const verified = await ecluse(['verify', media, '--json'], { home: h.w.inside });
    expect(verified.code, verified.stderr).toBe(0);
    expect((verified.json as { checks: Array<{ check: string }> }).checks.map((c) => c.check)).toEqual(
      expect.arrayContaining(['image-blobs', 'image-contents']),
    );
    expect(registrySnapshot(h.w.inside)).toEqual(before);
    const r = await h.w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { containerImages: unknown[]; bundle: { statementSha256: string } };
    h.firstStatement = out.bundle.statementSha256;
    expect(out.containerImages).toEqual([
      {
        name: 'acme-app',
        version: '1.4.0',
        repository: 'acme/app',
        tag: '1.4.0',
        digest: h.app.top.digest,
        mediaType: OCI_INDEX,
        platforms: ['linux/amd64', 'linux/arm64/v8'],
        blobs: h.app.blobs.length,
        carriedBlobs: h.app.blobs.length,
        size: h.app.blobs.reduce((n, b) => n + b.size, 0),
      },
    ]);
    const files = registrySnapshot(h.w.inside).files;
    expect(files).toEqual(h.app.blobs.map((b) => b.digest.slice(7)).sort());
    const status = await ecluseOk(['status', '--json'], { home: h.w.inside });
    expect((status.json as { registry: unknown }).registry).toEqual({
      images: 1,
      repositories: 1,
      blobs: h.app.blobs.length,
      bytes: h.app.blobs.reduce((n, b) => n + b.size, 0),
    });
    // the receipt lists the image and every blob held
    const receipts = h.w.path('receipt-1');
    fs.mkdirSync(receipts);
    const written = await ecluseOk(['receipt', 'export', '--to', receipts, '--json'], { home: h.w.inside });
    const file = (written.json as { receipt: { file: string } }).receipt.file;
    const envelope = JSON.parse(fs.readFileSync(file, 'utf8')) as { dsseEnvelope: { payload: string } };
    const receipt = JSON.parse(Buffer.from(envelope.dsseEnvelope.payload, 'base64').toString('utf8')) as {
      inventory: { artifacts: Array<{ name: string }>; blobs: string[] };
    };
    expect(receipt.inventory.blobs).toEqual(h.app.blobs.map((b) => b.digest.slice(7)).sort());
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
        h.w.inside,
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
      const env = { ...process.env, HOME: h.w.root };
      const raw = await run('skopeo', ['--insecure-policy', 'inspect', '--raw', '--tls-verify=false', ref], { env });
      expect(Buffer.from(raw.stdout).equals(h.app.top.bytes)).toBe(true);
      const inspected = JSON.parse(
        (await run('skopeo', ['--insecure-policy', 'inspect', '--tls-verify=false', ref], { env })).stdout,
      ) as { Digest: string };
      expect(inspected.Digest).toBe(h.app.top.digest);
    } finally {
      server.kill('SIGTERM');
    }
  });

  it('serve --registry-listen: a bad address, the Glance address, or a taken port each said in one line', async () => {
    const bad = await ecluse(['serve', '--registry-listen', 'nope'], { home: h.w.inside });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('E_USAGE: --registry-listen wants HOST:PORT with a port from 0 to 65535');
    const same = await ecluse(['serve', '--listen', '127.0.0.1:5999', '--registry-listen', '127.0.0.1:5999'], {
      home: h.w.inside,
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
        { home: h.w.inside },
      );
      expect(busy.code).toBe(3);
      expect(busy.stderr).toContain(
        `E_ADDRESS_IN_USE: 127.0.0.1:${port} is already in use by another program: stop it, or give another port with --registry-listen`,
      );
    } finally {
      taken.close();
    }
  });

  it('a second version sharing its base layers carries only its new blobs; both versions are served', async () => {
    await h.applyPolicy([
      vmRule,
      { name: 'acme', artifacts: ['acme-*'], types: ['oci-image'], vendorKeys: [vendor.publicKeyPem] },
    ]);
    const next = buildImage({
      platforms: TWO_PLATFORMS,
      layers: 1,
      layerSize: 20_000,
      base: h.app.layers,
      label: 'v2',
    });
    const held = new Set(h.app.blobs.map((b) => b.digest));
    const shared = new Set(next.blobs.filter((b) => held.has(b.digest)).map((b) => b.digest));
    expect(shared.size).toBe(6); // three base layers per platform
    const media = await h.secondBundle('v2', [
      spec(next, '1.5.0', { notCarried: shared, evidence: await cosignEvidence(next.top.digest) }),
    ]);
    const seq = lastAuditSeq(h.w.inside);
    const r = await h.w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    const carried = next.blobs.filter((b) => !shared.has(b.digest)).reduce((n, b) => n + b.size, 0);
    const total = next.blobs.reduce((n, b) => n + b.size, 0);
    console.log(`second version: ${carried} bytes carried of ${total} (${shared.size} shared blobs not carried)`);
    expect(
      (JSON.parse(r.stdout) as { containerImages: Array<{ carriedBlobs: number }> }).containerImages[0]?.carriedBlobs,
    ).toBe(next.blobs.length - shared.size);
    expect(auditSince(h.w.inside, seq).map((a) => a.kind)).toContain('container-image.promoted');
    expect(auditSince(h.w.inside, seq).find((a) => a.kind === 'check.vendor-evidence')?.message).toContain('cosign');
    const files = new Set(registrySnapshot(h.w.inside).files);
    for (const b of [...h.app.blobs, ...next.blobs]) expect(files.has(b.digest.slice(7))).toBe(true);
    expect(snapshot(h.w.inside).staging).toEqual([]);
  });

  it('store check verifies every blob; --repair removes an orphan blob, never a recorded one', async () => {
    expect((await ecluse(['store', 'check', '--json'], { home: h.w.inside })).code).toBe(0);
    const blobs = h.w.path('inside', 'registry', 'blobs', 'sha256');
    const orphan = path.join(blobs, 'f'.repeat(64));
    fs.writeFileSync(orphan, 'left by a crash');
    const layer = h.app.blobs[h.app.blobs.length - 1] as (typeof h.app.blobs)[number];
    const damaged = path.join(blobs, layer.digest.slice(7));
    fs.writeFileSync(damaged, Buffer.alloc(layer.size));
    const check = await ecluse(['store', 'check', '--repair', '--json'], { home: h.w.inside });
    expect(check.code).toBe(1);
    const problems = (check.json as { context?: unknown; message: string }).message;
    expect(problems).toContain(`digest-mismatch ${layer.digest}`);
    expect(fs.existsSync(orphan)).toBe(false);
    expect(fs.existsSync(damaged)).toBe(true);
  });
});
