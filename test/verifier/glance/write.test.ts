/**
 * The write side of the embedded Glance API: create, upload, PATCH, tags, deactivate/reactivate, delete, members,
 * info endpoints, and tokens (reader/admin, loopback without a token).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { glanceFixture, type GlanceFixture } from '../../helpers/glance-fixture.js';
import { authMiddleware, createToken, isLoopback, revokeToken } from '../../../verifier/glance/auth.js';
import { GlanceHttpError, READ_ONLY_MESSAGE } from '../../../verifier/glance/errors.js';

const JSON_ONLY = { Accept: 'application/json' };
const PATCH_TYPE = 'application/openstack-images-v2.1-json-patch';
const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');
const sha512 = (b: Buffer) => crypto.createHash('sha512').update(b).digest('hex');

let fx: GlanceFixture;
type Json = Record<string, unknown>;

async function call(
  method: string,
  p: string,
  o: { json?: unknown; body?: Buffer | string; type?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; headers: Headers; body: Json; raw: Buffer }> {
  const headers: Record<string, string> = { ...JSON_ONLY, ...o.headers };
  let body: Buffer | string | undefined = o.body;
  if (o.json !== undefined) {
    body = JSON.stringify(o.json);
    headers['Content-Type'] = o.type ?? 'application/json';
  } else if (o.type) headers['Content-Type'] = o.type;
  const r = await fetch(fx.url + p, { method, headers, body });
  const raw = Buffer.from(await r.arrayBuffer());
  let parsed: Json = {};
  try {
    parsed = raw.length ? (JSON.parse(raw.toString()) as Json) : {};
  } catch {
    // binary
  }
  return { status: r.status, headers: r.headers, body: parsed, raw };
}

const create = async (json: Json = {}) => {
  const r = await call('POST', '/v2/images', {
    json: { name: 'x', disk_format: 'raw', container_format: 'bare', ...json },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body;
};
const upload = (id: string, data: Buffer) =>
  call('PUT', `/v2/images/${id}/file`, { body: data, type: 'application/octet-stream' });
const patch = (id: string, ops: unknown, type = PATCH_TYPE) => call('PATCH', `/v2/images/${id}`, { json: ops, type });

beforeAll(async () => {
  fx = await glanceFixture([{ name: 'from-bundle' }]);
});
afterAll(async () => {
  await fx?.close();
});

describe('POST /v2/images', () => {
  it('creates a queued image: 201, Location, import-methods header, the record', async () => {
    const r = await call('POST', '/v2/images', {
      json: {
        name: 'new',
        disk_format: 'qcow2',
        container_format: 'bare',
        tags: ['a', 'b', 'a'],
        'owner_specified.openstack.md5': '',
        'owner_specified.openstack.sha256': '',
        min_ram: 64,
      },
    });
    expect(r.status).toBe(201);
    const id = r.body.id as string;
    expect(r.headers.get('location')).toBe(`${fx.url}/v2/images/${id}`);
    expect(r.headers.has('openstack-image-import-methods')).toBe(true);
    expect(r.body).toMatchObject({
      name: 'new',
      status: 'queued',
      visibility: 'shared',
      checksum: null,
      size: null,
      tags: ['a', 'b'],
      min_ram: 64,
      'owner_specified.openstack.md5': '',
      self: `/v2/images/${id}`,
    });
    expect(Object.keys(r.body).slice(0, 2)).toEqual([
      'owner_specified.openstack.md5',
      'owner_specified.openstack.sha256',
    ]);
    expect((await call('GET', `/v2/images/${id}`)).body).toEqual(r.body);
  });

  it('refuses read-only (403), reserved (403), bad values (400), duplicates (409), bad JSON (400)', async () => {
    for (const [k, v] of [
      ['status', 'active'],
      ['checksum', 'abc'],
      ['size', 5],
      ['created_at', '2020-01-01T00:00:00Z'],
    ] as const) {
      const r = await call('POST', '/v2/images', { json: { [k]: v } });
      expect(r.status, k).toBe(403);
      expect(r.body.message).toBe(`Attribute '${k}' is read-only.<br /><br />\n\n\n`);
    }
    expect((await call('POST', '/v2/images', { json: { deleted: 'x' } })).status).toBe(403);
    expect((await call('POST', '/v2/images', { json: { disk_format: 'zzz' } })).status).toBe(400);
    expect((await call('POST', '/v2/images', { json: { foo: 5 } })).status).toBe(400);
    expect((await call('POST', '/v2/images', { json: { min_ram: '5' } })).status).toBe(400);
    expect((await call('POST', '/v2/images', { json: { id: 'nope' } })).status).toBe(400);
    const id = crypto.randomUUID();
    expect((await call('POST', '/v2/images', { json: { id } })).status).toBe(201);
    const dup = await call('POST', '/v2/images', { json: { id } });
    expect(dup.status).toBe(409);
    expect(dup.body.message).toBe(`Image ID ${id} already exists!<br /><br />\n\n\n`);
    const bad = await call('POST', '/v2/images', { body: '{"name":', type: 'application/json' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toBe('Malformed JSON in request body.<br /><br />\n\n\n');
  });
});

describe('PUT /v2/images/{id}/file and download', () => {
  it('uploads: 415 for other media types, 204, active with digests, 409 a second time, bytes back', async () => {
    const img = await create();
    const id = img.id as string;
    const data = crypto.randomBytes(3 * 1024 * 1024 + 5);
    const wrong = await call('PUT', `/v2/images/${id}/file`, { body: data, type: 'text/plain' });
    expect(wrong.status).toBe(415);
    expect(wrong.body.message).toBe(
      'The request media type text/plain is not supported by this server.\n<br /><br />\n',
    );
    expect((await upload(id, data)).status).toBe(204);
    const shown = (await call('GET', `/v2/images/${id}`)).body;
    expect(shown).toMatchObject({
      status: 'active',
      size: data.length,
      virtual_size: data.length,
      checksum: md5(data),
      os_hash_algo: 'sha512',
      os_hash_value: sha512(data),
    });
    const again = await upload(id, Buffer.from('x'));
    expect(again.status).toBe(409);
    expect(again.body.message).toBe('Image status transition from active to saving is not allowed<br /><br />\n\n\n');
    const down = await call('GET', `/v2/images/${id}/file`);
    expect(down.status).toBe(200);
    expect(down.headers.get('content-md5')).toBe(md5(data));
    expect(down.raw.equals(data)).toBe(true);
    expect(fs.readdirSync(path.join(fx.imagesDir, '..', 'staging'))).toEqual([]);
  });

  it('a cut upload puts the image back to queued and leaves nothing behind', async () => {
    const id = (await create()).id as string;
    const controller = new AbortController();
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(64 * 1024));
        setTimeout(() => controller.abort(), 100);
      },
    });
    await expect(
      fetch(`${fx.url}/v2/images/${id}/file`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/octet-stream' },
        body,
        signal: controller.signal,
        duplex: 'half',
      }),
    ).rejects.toThrow();
    for (let i = 0; i < 50; i++) {
      if ((await call('GET', `/v2/images/${id}`)).body.status === 'queued') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await call('GET', `/v2/images/${id}`)).body.status).toBe('queued');
    expect(fs.readdirSync(path.join(fx.imagesDir, '..', 'staging'))).toEqual([]);
    expect((await upload(id, Buffer.from('after'))).status).toBe(204);
  });

  it('computes virtual_size from a qcow2 header', async () => {
    const id = (await create({ disk_format: 'qcow2' })).id as string;
    const head = Buffer.alloc(1024);
    head.writeUInt32BE(0x514649fb, 0);
    head.writeUInt32BE(3, 4);
    head.writeBigUInt64BE(10n * 1024n ** 3n, 24);
    expect((await upload(id, head)).status).toBe(204);
    expect((await call('GET', `/v2/images/${id}`)).body.virtual_size).toBe(10 * 1024 ** 3);
  });
});

describe('PATCH /v2/images/{id}', () => {
  it('415 with Accept-Patch for other media types', async () => {
    const id = (await create()).id as string;
    const r = await patch(id, [], 'application/json');
    expect(r.status).toBe(415);
    expect(r.headers.get('accept-patch')).toBe(
      'application/openstack-images-v2.0-json-patch, application/openstack-images-v2.1-json-patch',
    );
  });

  it('add, replace, remove; 409 for a missing extra; 403 for read-only; 400 for bad ops; v2.0 form', async () => {
    const id = (await create()).id as string;
    let r = await patch(id, [
      { op: 'add', path: '/foo', value: 'bar' },
      { op: 'replace', path: '/name', value: 'renamed' },
      { op: 'replace', path: '/tags', value: ['t1'] },
      { op: 'add', path: '/a~1b', value: '' },
    ]);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ foo: 'bar', name: 'renamed', tags: ['t1'], 'a/b': '' });
    r = await patch(id, [{ op: 'remove', path: '/foo' }]);
    expect(r.status).toBe(200);
    expect(r.body).not.toHaveProperty('foo');
    for (const op of ['remove', 'replace']) {
      r = await patch(id, [{ op, path: '/nope', value: 'x' }]);
      expect(r.status).toBe(409);
      expect(r.body.message).toBe(
        'There was a conflict when trying to complete your request.<br /><br />\nProperty nope does not exist.\n\n',
      );
    }
    expect((await patch(id, [{ op: 'replace', path: '/status', value: 'active' }])).status).toBe(403);
    expect((await patch(id, [{ op: 'remove', path: '/name' }])).status).toBe(403);
    expect((await patch(id, [{ op: 'move', path: '/name', from: '/x' }])).status).toBe(400);
    expect((await patch(id, [{ op: 'replace', path: 'name', value: 'a' }])).status).toBe(400);
    expect((await patch(id, [{ op: 'replace', path: '/a/b', value: 'a' }])).status).toBe(400);
    expect((await patch(id, { op: 'add' })).status).toBe(400);
    expect((await patch(id, [{ op: 'replace', path: '/os_hidden', value: 'true' }])).status).toBe(400);
    r = await patch(id, [{ replace: '/name', value: 'v20' }], 'application/openstack-images-v2.0-json-patch');
    expect(r.status).toBe(200);
    expect(r.body.name).toBe('v20');
    await upload(id, Buffer.from('data'));
    expect((await patch(id, [{ op: 'replace', path: '/disk_format', value: 'qcow2' }])).status).toBe(403);
    expect((await patch(crypto.randomUUID(), [])).status).toBe(404);
  });
});

describe('tags, deactivate/reactivate, delete', () => {
  it('tags: PUT adds (idempotent), DELETE removes, 404 for a missing tag', async () => {
    const id = (await create()).id as string;
    expect((await call('PUT', `/v2/images/${id}/tags/one`)).status).toBe(204);
    expect((await call('PUT', `/v2/images/${id}/tags/one`)).status).toBe(204);
    expect((await call('PUT', `/v2/images/${id}/tags/two`)).status).toBe(204);
    expect((await call('GET', `/v2/images/${id}`)).body.tags).toEqual(['one', 'two']);
    expect((await call('DELETE', `/v2/images/${id}/tags/one`)).status).toBe(204);
    expect((await call('DELETE', `/v2/images/${id}/tags/one`)).status).toBe(404);
    expect((await call('GET', `/v2/images?tag=two&limit=1000`)).body.images).toHaveLength(1);
  });

  it('deactivate/reactivate: 204, status follows, queued images refuse', async () => {
    const id = (await create()).id as string;
    expect((await call('POST', `/v2/images/${id}/actions/deactivate`)).status).toBe(403);
    await upload(id, Buffer.from('bytes'));
    expect((await call('POST', `/v2/images/${id}/actions/deactivate`)).status).toBe(204);
    expect((await call('GET', `/v2/images/${id}`)).body.status).toBe('deactivated');
    expect((await call('POST', `/v2/images/${id}/actions/reactivate`)).status).toBe(204);
    expect((await call('GET', `/v2/images/${id}`)).body.status).toBe('active');
    expect((await call('POST', `/v2/images/${id}/actions/explode`)).status).toBe(404);
  });

  it('delete: 204 and the file is gone; protected → 403; unknown → 404', async () => {
    const id = (await create({ protected: true })).id as string;
    await upload(id, Buffer.from('bytes'));
    expect(fs.existsSync(path.join(fx.imagesDir, id))).toBe(true);
    const refused = await call('DELETE', `/v2/images/${id}`);
    expect(refused.status).toBe(403);
    expect(refused.body.message).toBe(`Image ${id} is protected and cannot be deleted.<br /><br />\n\n\n`);
    expect((await patch(id, [{ op: 'replace', path: '/protected', value: false }])).status).toBe(200);
    expect((await call('DELETE', `/v2/images/${id}`)).status).toBe(204);
    expect(fs.existsSync(path.join(fx.imagesDir, id))).toBe(false);
    const again = await call('DELETE', `/v2/images/${id}`);
    expect(again.status).toBe(404);
    expect(again.body.message).toBe(`Failed to find image ${id} to delete<br /><br />\n\n\n`);
  });

  it('images from a bundle are read-only, and say why', async () => {
    const id = fx.images[0]!.id;
    const r = await call('DELETE', `/v2/images/${id}`);
    expect(r.status).toBe(403);
    expect(r.body.message).toBe(`${READ_ONLY_MESSAGE}<br /><br />\n\n\n`);
    expect(String(r.body.message)).toContain('verified');
  });
});

describe('members and info', () => {
  it('add, list, show, accept, remove', async () => {
    const id = (await create()).id as string;
    const add = await call('POST', `/v2/images/${id}/members`, { json: { member: 'proj1' } });
    expect(add.status).toBe(200);
    expect(add.body).toMatchObject({
      member_id: 'proj1',
      image_id: id,
      status: 'pending',
      schema: '/v2/schemas/member',
    });
    expect((await call('POST', `/v2/images/${id}/members`, { json: { member: 'proj1' } })).status).toBe(409);
    const list = await call('GET', `/v2/images/${id}/members`);
    expect(list.body).toMatchObject({ members: [{ member_id: 'proj1' }], schema: '/v2/schemas/members' });
    const acc = await call('PUT', `/v2/images/${id}/members/proj1`, { json: { status: 'accepted' } });
    expect(acc.body.status).toBe('accepted');
    expect((await call('DELETE', `/v2/images/${id}/members/proj1`)).status).toBe(204);
    expect((await call('GET', `/v2/images/${id}/members/proj1`)).status).toBe(404);
    const priv = (await create({ visibility: 'private' })).id as string;
    expect((await call('POST', `/v2/images/${priv}/members`, { json: { member: 'p' } })).status).toBe(403);
  });

  it('/v2/info/import and /v2/info/stores', async () => {
    const imp = await call('GET', '/v2/info/import');
    expect(imp.body).toEqual({
      'import-methods': { description: 'Import methods available.', type: 'array', value: [] },
    });
    const stores = await call('GET', '/v2/info/stores');
    expect(stores.body).toMatchObject({ stores: [{ id: 'local', default: 'true' }] });
    expect((await call('GET', '/v2/schemas/member')).body.name).toBe('member');
    expect((await call('GET', '/v2/schemas/members')).body.name).toBe('members');
  });
});

describe('tokens', () => {
  it('a reader token reads but may not write; an admin token writes; a revoked token is unknown', async () => {
    const reader = createToken(fx.db, 'reader', 'ro');
    const admin = createToken(fx.db, 'admin');
    expect(reader.token).toMatch(/^ecl_[A-Za-z0-9_-]{43}$/);
    const stored = fx.db.prepare('SELECT * FROM api_tokens WHERE id = ?').get(reader.record.id) as Json;
    expect(JSON.stringify(stored)).not.toContain(reader.token);
    const asReader = { 'X-Auth-Token': reader.token };
    expect((await call('GET', '/v2/images', { headers: asReader })).status).toBe(200);
    const denied = await call('POST', '/v2/images', { json: {}, headers: asReader });
    expect(denied.status).toBe(403);
    expect(denied.body.message).toBe('You are not authorized to complete add_image action.<br /><br />\n\n\n');
    expect((await call('POST', '/v2/images', { json: {}, headers: { 'X-Auth-Token': admin.token } })).status).toBe(201);
    expect(revokeToken(fx.db, reader.record.id)).toBe(true);
    // revoked: on loopback this is a no-auth client again (admin), as `--os-auth-type none`'s placeholder token is
    expect((await call('POST', '/v2/images', { json: {}, headers: asReader })).status).toBe(201);
  });

  it('beyond loopback: 401 without a known token, the role of a known one', () => {
    const { token } = createToken(fx.db, 'reader');
    const mw = authMiddleware(fx.db);
    const run = (remote: string, tok?: string): { err?: unknown; role?: string } => {
      const req = { socket: { remoteAddress: remote }, get: (h: string) => (h === 'x-auth-token' ? tok : undefined) };
      const res = { locals: {} as Record<string, unknown> };
      try {
        mw(req as unknown as express.Request, res as unknown as express.Response, () => undefined);
      } catch (e) {
        return { err: e };
      }
      return { role: (res.locals.auth as { role: string }).role };
    };
    const outside = run('192.0.2.7');
    expect(outside.err).toBeInstanceOf(GlanceHttpError);
    expect((outside.err as GlanceHttpError).status).toBe(401);
    expect((run('192.0.2.7', 'notused').err as GlanceHttpError).status).toBe(401);
    expect(run('192.0.2.7', token).role).toBe('reader');
    expect(run('127.0.0.1').role).toBe('admin');
    expect(run('::ffff:127.0.0.1', 'notused').role).toBe('admin');
    expect(isLoopback('::1')).toBe(true);
    expect(isLoopback('::ffff:10.0.0.1')).toBe(false);
  });
});

describe('recovery', () => {
  it('an upload cut by a crash: the image goes back to queued and its staging file is removed', async () => {
    const { recoverUploads } = await import('../../../verifier/glance/upload.js');
    const id = (await create()).id as string;
    fx.db.prepare("UPDATE images SET status = 'saving' WHERE id = ?").run(id);
    const staging = path.join(fx.imagesDir, '..', 'staging');
    fs.mkdirSync(staging, { recursive: true });
    fs.writeFileSync(path.join(staging, 'upload-crashed'), 'partial');
    fs.writeFileSync(path.join(staging, 'not-mine'), 'keep');
    expect(recoverUploads(fx.db, staging)).toBe(1);
    expect((await call('GET', `/v2/images/${id}`)).body.status).toBe('queued');
    expect(fs.readdirSync(staging)).toEqual(['not-mine']);
    fs.rmSync(path.join(staging, 'not-mine'));
    // bundle images are never touched
    expect(fx.images[0]!.status).toBe('active');
  });
});
