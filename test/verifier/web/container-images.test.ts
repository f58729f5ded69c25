/**
 * The web view's container images page over a real store: each image the registry serves, with what to pull, its
 * version, the vendor's digest, the platforms carried and the bundle it came in; an empty store says so.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../../verifier/audit.js';
import { openDb, type Db } from '../../../verifier/db.js';
import { importHome } from '../../../verifier/home.js';
import { auditWebRouter } from '../../../verifier/web/router.js';
import { buildImage, storeImage } from '../../helpers/oci-image.js';

let dir: string;
let db: Db;
let server: http.Server;
let base: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-web-oci-'));
  db = openDb(dir);
  const app = express();
  app.use('/audit', auditWebRouter({ db, checkpointEveryMs: 0 }));
  server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('container images page', () => {
  it('says when no container image was imported', async () => {
    const r = await fetch(`${base}/audit/container-images`);
    expect(r.status).toBe(200);
    expect(await r.text()).toContain('No container image imported yet.');
  });

  it('lists each image: repository:tag, version, digest, platforms, bundle', async () => {
    const image = buildImage({
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    storeImage(db, importHome(dir), image, {
      repository: 'acme/app',
      tag: '1.4',
      version: '1.4.0',
      bundleId: 'b-oci-1',
    });
    const text = await (await fetch(`${base}/audit/container-images`)).text();
    expect(text).toContain('<td class="mono">acme/app:1.4</td>');
    expect(text).toContain('<td>1.4.0</td>');
    expect(text).toContain(`title="${image.top.digest}"`);
    expect(text).toContain('linux/amd64, linux/arm64/v8');
    expect(text).toContain('href="/audit/bundle/b-oci-1"');
    expect(text).toContain('aria-current="page">Container images');
    // and on the page of the bundle that brought it (a bundle the audit log knows)
    appendAudit(db, { kind: 'import.accepted', outcome: 'accepted', message: 'accepted', bundleId: 'b-oci-1' });
    const bundle = await (await fetch(`${base}/audit/bundle/b-oci-1`)).text();
    expect(bundle).toContain('<h2>Container images</h2>');
    expect(bundle).toContain(`<td class="mono">${image.top.digest}</td>`);
  });
});
