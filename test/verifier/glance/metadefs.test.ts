/**
 * Metadata definitions (`/v2/metadefs`): the distribution's definition files loaded once at the first serve (a
 * malformed one left out and named in the audit), then read and changed through the API as Glance does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { glanceFixture, type GlanceFixture } from '../../helpers/glance-fixture.js';
import { loadDistributionMetadefs } from '../../../verifier/glance/metadefs-store.js';

const JSON_ONLY = { Accept: 'application/json', 'Content-Type': 'application/json' };
let fx: GlanceFixture;
let dir: string;

const call = async (method: string, p: string, body?: unknown) => {
  const r = await fetch(fx.url + p, {
    method,
    headers: JSON_ONLY,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: (text ? JSON.parse(text) : undefined) as Record<string, unknown> };
};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-metadefs-'));
  fs.writeFileSync(
    path.join(dir, 'compute-watchdog.json'),
    JSON.stringify({
      namespace: 'OS::Compute::Watchdog',
      display_name: 'Watchdog Behavior',
      description: 'What the watchdog does',
      visibility: 'public',
      protected: true,
      resource_type_associations: [{ name: 'OS::Glance::Image' }, { name: 'OS::Nova::Flavor', prefix: 'hw:' }],
      properties: { hw_watchdog_action: { title: 'Watchdog Action', type: 'string', enum: ['disabled', 'reset'] } },
      objects: [{ name: 'Watchdog', properties: {} }],
      tags: [{ name: 'watchdog' }],
    }),
  );
  fs.writeFileSync(path.join(dir, 'broken.json'), '{"namespace": ');
  process.env.ECLUSE_METADEFS_DIR = dir;
  fx = await glanceFixture([]);
});
afterAll(async () => {
  delete process.env.ECLUSE_METADEFS_DIR;
  await fx?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('metadata definitions', () => {
  it('loads the distribution files once; a malformed file is left out and named in the audit', async () => {
    expect(loadDistributionMetadefs(fx.db, dir)).toBe(0); // already loaded at serve
    const audit = fx.db.prepare("SELECT message FROM audit WHERE kind = 'glance.metadefs.load'").all() as {
      message: string;
    }[];
    expect(audit).toHaveLength(1);
    expect(audit[0]!.message).toMatch(/1 namespace\(s\) loaded.*broken\.json/);
    const types = await call('GET', '/v2/metadefs/resource_types');
    expect((types.body.resource_types as { name: string }[]).map((t) => t.name)).toEqual([
      'OS::Glance::Image',
      'OS::Nova::Flavor',
    ]);
    const ns = await call('GET', '/v2/metadefs/namespaces/OS::Compute::Watchdog');
    expect(ns.status).toBe(200);
    expect(ns.body).toMatchObject({
      namespace: 'OS::Compute::Watchdog',
      visibility: 'public',
      protected: true,
      properties: { hw_watchdog_action: { title: 'Watchdog Action', type: 'string' } },
      objects: [{ name: 'Watchdog' }],
      tags: [{ name: 'watchdog' }],
    });
    expect(ns.body.resource_type_associations).toContainEqual(
      expect.objectContaining({ name: 'OS::Nova::Flavor', prefix: 'hw:' }),
    );
  });

  it('namespaces: create, 409 on a duplicate, protected ones refuse deletion, PUT unprotects, then 204 and 404', async () => {
    const created = await call('POST', '/v2/metadefs/namespaces', {
      namespace: 'site-ns',
      visibility: 'public',
      protected: true,
    });
    expect(created.status).toBe(201);
    expect(created.body.self).toBe('/v2/metadefs/namespaces/site-ns');
    expect((await call('POST', '/v2/metadefs/namespaces', { namespace: 'site-ns' })).status).toBe(409);
    expect((await call('POST', '/v2/metadefs/namespaces', { visibility: 'public' })).status).toBe(400);
    expect((await call('DELETE', '/v2/metadefs/namespaces/site-ns')).status).toBe(403);
    const put = await call('PUT', '/v2/metadefs/namespaces/site-ns', {
      namespace: 'site-ns',
      visibility: 'private',
      protected: false,
    });
    expect(put.body).toMatchObject({ visibility: 'private', protected: false });
    expect((await call('DELETE', '/v2/metadefs/namespaces/site-ns')).status).toBe(204);
    expect((await call('GET', '/v2/metadefs/namespaces/site-ns')).status).toBe(404);
  });

  it('objects, properties, tags and resource type associations: create, show, rename, delete', async () => {
    await call('POST', '/v2/metadefs/namespaces', { namespace: 'items', visibility: 'public' });
    const base = '/v2/metadefs/namespaces/items';
    expect((await call('POST', `${base}/objects`, { name: 'o1' })).status).toBe(201);
    const renamed = await call('PUT', `${base}/objects/o1`, { name: 'o2', description: 'second' });
    expect(renamed.body).toMatchObject({ name: 'o2', description: 'second', self: `${base}/objects/o2` });
    expect((await call('GET', `${base}/objects/o1`)).status).toBe(404);
    expect(((await call('GET', `${base}/objects`)).body.objects as { name: string }[]).map((o) => o.name)).toEqual([
      'o2',
    ]);

    expect((await call('POST', `${base}/properties`, { name: 'p', title: 'P', type: 'string' })).status).toBe(201);
    expect((await call('POST', `${base}/properties`, { name: 'p', title: 'P', type: 'string' })).status).toBe(409);
    expect((await call('PUT', `${base}/properties/p`, { name: 'p', title: 'P2', type: 'string' })).body.title).toBe(
      'P2',
    );
    expect((await call('DELETE', `${base}/properties/p`)).status).toBe(204);
    expect((await call('GET', `${base}/properties`)).body.properties).toEqual({});

    expect((await call('POST', `${base}/tags`, { tags: [{ name: 'a' }, { name: 'b' }] })).status).toBe(201);
    expect((await call('POST', `${base}/tags/c`)).status).toBe(201);
    expect((await call('PUT', `${base}/tags/c`, { name: 'd' })).body.name).toBe('d');
    expect(((await call('GET', `${base}/tags`)).body.tags as { name: string }[]).map((t) => t.name)).toEqual([
      'a',
      'b',
      'd',
    ]);
    expect((await call('DELETE', `${base}/tags`)).status).toBe(204);
    expect((await call('GET', `${base}/tags`)).body.tags).toEqual([]);

    expect((await call('POST', `${base}/resource_types`, { name: 'OS::Cinder::Volume', prefix: 'vol_' })).status).toBe(
      201,
    );
    const assoc = await call('GET', `${base}/resource_types`);
    expect(assoc.body.resource_type_associations).toEqual([
      expect.objectContaining({ name: 'OS::Cinder::Volume', prefix: 'vol_' }),
    ]);
    expect((await call('DELETE', `${base}/resource_types/OS::Cinder::Volume`)).status).toBe(204);
    // deleting the namespace takes its items with it
    expect((await call('DELETE', base)).status).toBe(204);
    expect(fx.db.prepare("SELECT count(*) AS n FROM metadef_items WHERE namespace = 'items'").get()).toEqual({ n: 0 });
  });

  it('serves the schemas under the names Glance uses', async () => {
    const names: Record<string, string> = {
      namespace: 'namespace',
      namespaces: 'namespaces',
      resource_type: 'resource_type_association',
      resource_types: 'resource_type_associations',
      object: 'object',
      objects: 'objects',
      property: 'property',
      properties: 'properties',
      tag: 'tag',
      tags: 'tags',
    };
    for (const [path_, name] of Object.entries(names)) {
      expect((await call('GET', `/v2/schemas/metadefs/${path_}`)).body.name, path_).toBe(name);
    }
    expect((await call('GET', '/v2/schemas/metadefs/toString')).status).toBe(404);
  });
});
