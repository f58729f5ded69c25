/**
 * The embedded Glance API apart from the image list (api-list.test.ts): version discovery, one image by id, its bytes
 * (whole, by range, HEAD), the schemas, and the refusal of writes to images that came through a bundle.
 */
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { JSON_ONLY, REQ_ID, useGlanceApi, type ListBody } from '../../helpers/glance-api.js';
import { READ_ONLY_MESSAGE } from '../../../verifier/glance/errors.js';

const { fx, get, getJson, names, idOf } = useGlanceApi();

describe('discovery', () => {
  it('answers 300 on / and unversioned paths, 200 on /versions, hrefs from the Host', async () => {
    for (const p of ['/', '/v1/images', '/anything/else']) {
      const r = await get(p);
      expect(r.status, p).toBe(300);
      expect(r.headers.get('x-openstack-request-id')).toMatch(REQ_ID);
      const body = (await r.json()) as { versions: { id: string; status: string; links: { href: string }[] }[] };
      expect(body.versions[0]).toEqual({
        id: 'v2.15',
        status: 'CURRENT',
        links: [{ rel: 'self', href: `${fx.url}/v2/` }],
      });
      expect(body.versions.at(-1)!.id).toBe('v2.0');
    }
    const v = await get('/versions');
    expect(v.status).toBe(200);
    expect(v.headers.get('content-type')).toBe('application/json');

    const viaHost = await new Promise<string>((resolve, reject) => {
      const u = new URL(fx.url);
      http
        .get({ host: u.hostname, port: u.port, path: '/versions', headers: { Host: 'glance.example:9292' } }, (res) => {
          let s = '';
          res.on('data', (c: Buffer) => (s += c.toString()));
          res.on('end', () => resolve(s));
        })
        .on('error', reject);
    });
    expect(viaHost).toContain('"href": "http://glance.example:9292/v2/"');
  });

  it('redirects /v2 to /v2/ and 404s unknown v2 paths', async () => {
    const r = await fetch(`${fx.url}/v2`, { redirect: 'manual' });
    expect(r.status).toBe(302);
    expect(r.headers.get('location')).toBe(`${fx.url}/v2/`);
    const nf = await get('/v2/no-such-resource', JSON_ONLY);
    expect(nf.status).toBe(404);
    expect(await nf.json()).toEqual({
      message: 'The resource could not be found.<br /><br />\n\n\n',
      code: '404 Not Found',
      title: 'Not Found',
    });
  });
});

describe('GET /v2/images/{id}', () => {
  it('shows one image like the list does', async () => {
    const id = idOf('charlie');
    const r = await get(`/v2/images/${id}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    const one = (await r.json()) as Record<string, unknown>;
    const list = await getJson<ListBody>(`/v2/images?id=${id}`);
    expect(one).toEqual(list.body.images[0]);
    expect(one).toMatchObject({ name: 'charlie', size: 10_000, ecluse_vendor: 'other' });
    // hidden images are shown by id
    expect((await get(`/v2/images/${idOf('delta')}`)).status).toBe(200);
  });

  it('404s unknown and non-UUID ids in the reference shapes (HTML, JSON, plain text)', async () => {
    const html = await get('/v2/images/alpha', { Accept: '*/*' });
    expect(html.status).toBe(404);
    expect(html.headers.get('content-type')).toBe('text/html; charset=UTF-8');
    expect(html.headers.get('x-openstack-request-id')).toMatch(REQ_ID);
    expect(await html.text()).toBe(
      '<html>\n <head>\n  <title>404 Not Found</title>\n </head>\n <body>\n  <h1>404 Not Found</h1>\n' +
        '  No image found with ID alpha<br /><br />\n\n\n\n </body>\n</html>',
    );
    expect((await get('/v2/images/alpha', { Accept: '*/*' })).headers.get('content-type')).toMatch(/^text\/html/);
    expect(
      (await get('/v2/images/alpha', { Accept: 'application/json, text/html' })).headers.get('content-type'),
    ).toMatch(/^text\/html/);
    const unknown = '5c7b2f5e-0000-4000-8000-000000000000';
    const json = await get(`/v2/images/${unknown}`, JSON_ONLY);
    expect(json.status).toBe(404);
    expect(json.headers.get('content-type')).toBe('application/json');
    expect(await json.json()).toEqual({
      message: `No image found with ID ${unknown}<br /><br />\n\n\n`,
      code: '404 Not Found',
      title: 'Not Found',
    });
    const plain = await get('/v2/images/x', { Accept: 'text/plain' });
    expect(plain.headers.get('content-type')).toBe('text/plain; charset=UTF-8');
    expect(await plain.text()).toBe('404 Not Found\n\nNo image found with ID x\n\n   ');
    // No Accept at all (glanceclient): plain text too, as the reference server.
    const none = await new Promise<{ type: string | undefined; body: string }>((resolve, reject) => {
      const u = new URL(fx.url);
      http
        .get({ host: u.hostname, port: u.port, path: '/v2/images/x', headers: {} }, (res) => {
          let s = '';
          res.on('data', (c: Buffer) => (s += c.toString()));
          res.on('end', () => resolve({ type: res.headers['content-type'], body: s }));
        })
        .on('error', reject);
    });
    expect(none).toEqual({
      type: 'text/plain; charset=UTF-8',
      body: '404 Not Found\n\nNo image found with ID x\n\n   ',
    });
  });
});

describe('GET /v2/images/{id}/file', () => {
  it('streams the bytes with Content-MD5 and Content-Length', async () => {
    for (const row of fx.images.filter((i) => i.file && i.size)) {
      const r = await get(`/v2/images/${row.id}/file`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('application/octet-stream');
      expect(r.headers.get('content-length')).toBe(String(row.size));
      expect(r.headers.get('content-md5')).toBe(row.checksum);
      expect(r.headers.get('x-openstack-request-id')).toMatch(REQ_ID);
      expect(Buffer.from(await r.arrayBuffer()).equals(fx.data.get(row.id)!)).toBe(true);
    }
  });

  it('serves single ranges with 206 and Content-Range', async () => {
    const id = idOf('alpha');
    const bytes = fx.data.get(id)!;
    const n = bytes.length;
    const cases: [string, number, number][] = [
      ['bytes=0-9', 0, 9],
      ['bytes=10-', 10, n - 1],
      ['bytes=-5', n - 5, n - 1],
      ['bytes=5-999999', 5, n - 1],
      ['bytes=-999999', 0, n - 1],
    ];
    for (const [range, a, b] of cases) {
      const r = await get(`/v2/images/${id}/file`, { Range: range });
      expect(r.status, range).toBe(206);
      expect(r.headers.get('content-range')).toBe(`bytes ${a}-${b}/${n}`);
      expect(r.headers.get('content-length')).toBe(String(b - a + 1));
      expect(r.headers.get('content-md5')).toBe(fx.images[0]!.checksum);
      expect(Buffer.from(await r.arrayBuffer()).equals(bytes.subarray(a, b + 1))).toBe(true);
    }
  });

  it('answers 416 for unsatisfiable or malformed ranges and 400 for several', async () => {
    const id = idOf('alpha');
    const n = fx.data.get(id)!.length;
    const r = await get(`/v2/images/${id}/file`, { Range: `bytes=${n}-`, ...JSON_ONLY });
    expect(r.status).toBe(416);
    // as the reference server (test/conformance): no Content-Range on 416
    expect(r.headers.get('content-range')).toBeNull();
    expect(await r.json()).toEqual({
      message:
        'The Range requested is not available.<br /><br />\nInvalid start position in Range header. ' +
        `Start position MUST be in the inclusive range [0, ${n - 1}].\n\n`,
      code: '416 Request Range Not Satisfiable',
      title: 'Request Range Not Satisfiable',
    });
    for (const bad of ['bytes=9-2', 'bytes=abc', 'items=0-1', 'bytes=-0']) {
      expect((await get(`/v2/images/${id}/file`, { Range: bad })).status, bad).toBe(416);
    }
    const multi = await get(`/v2/images/${id}/file`, { Range: 'bytes=0-1,4-5', ...JSON_ONLY });
    expect(multi.status).toBe(400);
    expect(((await multi.json()) as { message: string }).message).toMatch(/^Requests with multiple ranges/);
    expect((await get(`/v2/images/${idOf('golf')}/file`, { Range: 'bytes=0-1' })).status).toBe(416);
  });

  it('answers 204 for an image without data, 200 empty for a zero-byte image, 404 for unknown ids', async () => {
    const none = await get(`/v2/images/${idOf('echo')}/file`);
    expect(none.status).toBe(204);
    expect(none.headers.get('content-md5')).toBeNull();
    expect(none.headers.get('x-openstack-request-id')).toMatch(REQ_ID);
    const empty = await get(`/v2/images/${idOf('golf')}/file`);
    expect(empty.status).toBe(200);
    expect(empty.headers.get('content-length')).toBe('0');
    expect(empty.headers.get('content-md5')).toBe('d41d8cd98f00b204e9800998ecf8427e');
    expect((await empty.arrayBuffer()).byteLength).toBe(0);
    expect((await get('/v2/images/nope/file')).status).toBe(404);
    expect((await get('/v2/images/5c7b2f5e-0000-4000-8000-000000000000/file')).status).toBe(404);
  });

  it('answers HEAD with the headers only', async () => {
    const row = fx.images[2]!;
    const r = await fetch(`${fx.url}/v2/images/${row.id}/file`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(row.size));
    expect(r.headers.get('content-md5')).toBe(row.checksum);
  });
});

describe('schemas', () => {
  it('serves /v2/schemas/image and /v2/schemas/images', async () => {
    const image = await getJson<{ name: string; properties: Record<string, unknown>; additionalProperties: unknown }>(
      '/v2/schemas/image',
    );
    expect(image.status).toBe(200);
    expect(image.body.name).toBe('image');
    expect(image.body.additionalProperties).toEqual({ type: 'string' });
    for (const k of [
      'id',
      'name',
      'status',
      'checksum',
      'os_hash_value',
      'tags',
      'self',
      'file',
      'schema',
      'locations',
    ]) {
      expect(image.body.properties, k).toHaveProperty(k);
    }
    // left out on purpose: glanceclient's cached-schema options clash on it (see schemas.ts)
    expect(image.body.properties).not.toHaveProperty('stores');
    const images = await getJson<{ name: string; properties: { images: { items: unknown } } }>('/v2/schemas/images');
    expect(images.status).toBe(200);
    expect(images.body.name).toBe('images');
    expect(images.body.properties.images.items).toEqual(image.body);
  });
});

describe('writes to images that came through a bundle (read-only through the API)', () => {
  it.each([
    ['PATCH', '/v2/images/ID'],
    ['DELETE', '/v2/images/ID'],
    ['PUT', '/v2/images/ID/file'],
    ['PUT', '/v2/images/ID/tags/x'],
    ['DELETE', '/v2/images/ID/tags/x'],
    ['POST', '/v2/images/ID/actions/deactivate'],
  ])('%s %s → 403', async (method, p) => {
    const contentType =
      method === 'PATCH'
        ? 'application/openstack-images-v2.1-json-patch'
        : p.endsWith('/file')
          ? 'application/octet-stream'
          : 'application/json';
    const r = await fetch(fx.url + p.replace('ID', idOf('alpha')), {
      method,
      headers: { ...JSON_ONLY, 'Content-Type': contentType },
      body: method === 'DELETE' || method === 'POST' ? null : method === 'PATCH' ? '[]' : 'x',
    });
    expect(r.status).toBe(403);
    expect(r.headers.get('x-openstack-request-id')).toMatch(REQ_ID);
    expect(await r.json()).toEqual({
      message: `${READ_ONLY_MESSAGE}<br /><br />\n\n\n`,
      code: '403 Forbidden',
      title: 'Forbidden',
    });
  });

  it('405 with Allow for methods the resource does not have', async () => {
    const r = await fetch(`${fx.url}/v2/images`, { method: 'DELETE' });
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('GET, POST');
    // the catalog is untouched
    expect(await names('?limit=100')).toHaveLength(6);
  });
});
