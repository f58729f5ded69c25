/**
 * Pushing to a Glance target, against small fake Keystone and Glance servers: Keystone v3 password and
 * application-credential bodies and token use, a partial remote image deleted when the upload fails, a digest
 * mismatch refused (and cleaned up), retries, records and audit rows.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { glanceFixture, type GlanceFixture } from '../../helpers/glance-fixture.js';
import { GlanceClient, keystoneAuthBody, type TargetAuth } from '../../../verifier/targets/client.js';
import { pushImage, pushToTargets } from '../../../verifier/targets/push.js';
import { addTarget, listTargets, pushRecords } from '../../../verifier/targets/targets.js';

interface Fake {
  url: string;
  calls: { method: string; path: string; token: string | undefined; body: string }[];
  close(): Promise<void>;
}

type Handler = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse) => void;

async function fake(handler: Handler): Promise<Fake> {
  const calls: Fake['calls'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      calls.push({
        method: req.method ?? '',
        path: req.url ?? '',
        token: req.headers['x-auth-token'] as string | undefined,
        body: body.length < 10_000 ? body.toString() : `<${body.length} bytes>`,
      });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

const json = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
};

/** A fake Glance: create → 201, upload → `upload` status, show → active with `digests`. */
function fakeGlance(o: {
  upload: number;
  digests?: (data: Buffer) => { checksum: string; os_hash_value: string };
}): Handler {
  const images = new Map<string, Record<string, unknown>>();
  return (req, body, res) => {
    const m = /^\/v2\/images(?:\/([^/]+))?(\/file)?$/.exec(req.url ?? '');
    if (!m) return json(res, 404, {});
    const [, id, file] = m;
    if (req.method === 'POST' && !id) {
      const img = { ...(JSON.parse(body.toString()) as object), id: crypto.randomUUID(), status: 'queued' };
      images.set(img.id, img);
      return json(res, 201, img);
    }
    const img = id ? images.get(id) : undefined;
    if (!img) return json(res, 404, { message: 'nope' });
    if (req.method === 'PUT' && file) {
      if (o.upload !== 204) return json(res, o.upload, { message: 'store full' });
      const d = o.digests?.(body) ?? {
        checksum: crypto.createHash('md5').update(body).digest('hex'),
        os_hash_value: crypto.createHash('sha512').update(body).digest('hex'),
      };
      Object.assign(img, { status: 'active', ...d });
      res.writeHead(204);
      return res.end();
    }
    if (req.method === 'GET') return json(res, 200, img);
    if (req.method === 'DELETE') {
      images.delete(id!);
      res.writeHead(204);
      return res.end();
    }
    if (req.method === 'PATCH') return json(res, 200, img);
    return json(res, 405, {});
  };
}

let fx: GlanceFixture;
let imageId: string;
const FAST = { retryDelayMs: 1, pollMs: 1 };

beforeAll(async () => {
  fx = await glanceFixture([
    {
      name: 'vendor-image',
      data: crypto.randomBytes(100_000),
      visibility: 'public',
      properties: { ecluse_bundle_id: 'b1', img_signature: 'c2ln', img_signature_key_type: 'RSA-PSS' },
    },
  ]);
  imageId = fx.images[0]!.id;
});
afterAll(async () => {
  await fx?.close();
});

describe('Keystone v3 auth', () => {
  it('password and application credential bodies; the token is sent to Glance and cached', async () => {
    const password: TargetAuth = {
      type: 'password',
      authUrl: '',
      username: 'ecluse',
      password: 's3cret',
      userDomain: 'Default',
      project: 'images',
      projectDomain: 'Default',
    };
    expect(keystoneAuthBody(password)).toEqual({
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: 'ecluse', domain: { name: 'Default' }, password: 's3cret' } },
        },
        scope: { project: { name: 'images', domain: { name: 'Default' } } },
      },
    });
    const keystone = await fake((req, body, res) => {
      const b = JSON.parse(body.toString()) as { auth: { identity: { methods: string[] } } };
      if (req.url !== '/v3/auth/tokens' || b.auth.identity.methods[0] !== 'application_credential') {
        return json(res, 401, {});
      }
      json(
        res,
        201,
        { token: { expires_at: new Date(Date.now() + 3_600_000).toISOString() } },
        { 'X-Subject-Token': 'tok-1' },
      );
    });
    const glance = await fake(fakeGlance({ upload: 204 }));
    try {
      const client = new GlanceClient(glance.url, {
        type: 'application_credential',
        authUrl: `${keystone.url}/v3`,
        id: 'ac-id',
        secret: 'ac-secret',
      });
      await client.request('GET', '/v2/images/x', { ok: [404] });
      await client.request('GET', '/v2/images/y', { ok: [404] });
      expect(keystone.calls).toHaveLength(1);
      expect(JSON.parse(keystone.calls[0]!.body)).toEqual({
        auth: {
          identity: {
            methods: ['application_credential'],
            application_credential: { id: 'ac-id', secret: 'ac-secret' },
          },
        },
      });
      expect(glance.calls.map((c) => c.token)).toEqual(['tok-1', 'tok-1']);
      const refused = new GlanceClient(glance.url, { ...password, authUrl: keystone.url });
      await expect(refused.getImage('x')).rejects.toThrow(/Keystone refused the credentials \(HTTP 401\)/);
    } finally {
      await keystone.close();
      await glance.close();
    }
  });
});

describe('pushImage', () => {
  it('pushes: create with properties, upload, active, digests compared, remote id recorded and audited', async () => {
    const glance = await fake(fakeGlance({ upload: 204 }));
    try {
      const t = addTarget(fx.db, {
        name: 'ok',
        url: glance.url,
        auth: { type: 'none' },
        options: { visibility: 'private' },
      });
      const r = await pushImage(fx.db, fx.imagesDir, t, imageId, FAST);
      expect(r).toMatchObject({ ok: true, attempts: 1 });
      const create = JSON.parse(glance.calls[0]!.body) as Record<string, unknown>;
      expect(create).toMatchObject({
        name: 'vendor-image',
        visibility: 'private',
        ecluse_bundle_id: 'b1',
        ecluse_image_id: imageId,
        img_signature: 'c2ln',
      });
      expect(glance.calls[1]).toMatchObject({ method: 'PUT', body: '<100000 bytes>' });
      expect(pushRecords(fx.db, 'ok')).toEqual([
        expect.objectContaining({ image_id: imageId, remote_id: r.remoteId, status: 'active' }),
      ]);
      const audit = fx.db.prepare("SELECT * FROM audit WHERE kind = 'target.pushed'").all();
      expect(audit).toHaveLength(1);
    } finally {
      await glance.close();
    }
  });

  it('a failed upload deletes the partial remote image and retries; then records failed', async () => {
    const glance = await fake(fakeGlance({ upload: 500 }));
    try {
      const t = addTarget(fx.db, { name: 'broken', url: glance.url, auth: { type: 'none' } });
      const r = await pushImage(fx.db, fx.imagesDir, t, imageId, FAST);
      expect(r).toMatchObject({ ok: false, attempts: 3, remoteId: null });
      expect(r.message).toMatch(/HTTP 500 store full; the partial remote image .* was deleted/);
      const methods = glance.calls.map((c) => c.method);
      expect(methods).toEqual(['POST', 'PUT', 'DELETE', 'POST', 'PUT', 'DELETE', 'POST', 'PUT', 'DELETE']);
      expect(pushRecords(fx.db, 'broken')[0]).toMatchObject({ status: 'failed', attempts: 3 });
    } finally {
      await glance.close();
    }
  });

  it("refuses a remote image whose digests are not the bundle's, and deletes it", async () => {
    const glance = await fake(
      fakeGlance({ upload: 204, digests: () => ({ checksum: '0'.repeat(32), os_hash_value: 'x' }) }),
    );
    try {
      const t = addTarget(fx.db, { name: 'liar', url: glance.url, auth: { type: 'none' } });
      const r = await pushImage(fx.db, fx.imagesDir, t, imageId, { ...FAST, attempts: 1 });
      expect(r.ok).toBe(false);
      expect(r.message).toMatch(/remote checksum 0{32} is not the bundle's/);
      expect(glance.calls.at(-1)!.method).toBe('DELETE');
    } finally {
      await glance.close();
    }
  });

  it('signatures after-upload: created without img_signature*, added by PATCH once active', async () => {
    const glance = await fake(fakeGlance({ upload: 204 }));
    try {
      const t = addTarget(fx.db, {
        name: 'lab',
        url: glance.url,
        auth: { type: 'none' },
        options: { signatures: 'after-upload' },
      });
      expect((await pushImage(fx.db, fx.imagesDir, t, imageId, FAST)).ok).toBe(true);
      expect(glance.calls[0]!.body).not.toContain('img_signature');
      const patch = glance.calls.find((c) => c.method === 'PATCH')!;
      expect(JSON.parse(patch.body)).toEqual([
        { op: 'add', path: '/img_signature', value: 'c2ln' },
        { op: 'add', path: '/img_signature_key_type', value: 'RSA-PSS' },
      ]);
    } finally {
      await glance.close();
    }
  });

  it('pushToTargets never throws and does nothing without targets', async () => {
    fx.db.prepare('DELETE FROM glance_targets').run();
    expect(listTargets(fx.db)).toEqual([]);
    expect(await pushToTargets(fx.db, fx.imagesDir, [imageId])).toEqual([]);
    expect(fs.existsSync(fx.imagesDir)).toBe(true);
  });
});
