/**
 * GET /v2/images on the embedded Glance API: the record shape, paging by limit and marker, filters and sorts, the 400
 * for each malformed query, community images and the limit cap. The rest of the read API is in api.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { JSON_ONLY, REQ_ID, useGlanceApi, type ListBody } from '../../helpers/glance-api.js';

const { fx, get, getJson, names, idOf } = useGlanceApi();

describe('GET /v2/images', () => {
  it('lists visible images, newest first, with the record shape', async () => {
    const r = await get('/v2/images');
    expect(r.status).toBe(200);
    expect(r.headers.get('x-openstack-request-id')).toMatch(REQ_ID);
    const body = (await r.json()) as ListBody;
    expect(body.first).toBe('/v2/images');
    expect(body.schema).toBe('/v2/schemas/images');
    expect(body.next).toBeUndefined();
    expect(body.images.map((i) => i.name)).toEqual(['golf', 'foxtrot', 'echo', 'charlie', 'bravo', 'alpha']);
    const alpha = body.images.find((i) => i.name === 'alpha')!;
    const row = fx.images[0]!;
    expect(alpha).toEqual({
      ecluse_bundle_id: 'b1',
      ecluse_vendor: 'acme',
      id: row.id,
      name: 'alpha',
      status: 'active',
      visibility: 'shared',
      protected: false,
      os_hidden: false,
      checksum: row.checksum,
      os_hash_algo: 'sha512',
      os_hash_value: row.os_hash_value,
      size: row.size,
      virtual_size: null,
      container_format: 'bare',
      disk_format: 'raw',
      min_disk: 0,
      min_ram: 0,
      owner: null,
      created_at: row.created_at,
      updated_at: row.updated_at,
      tags: ['base', 'lts'],
      self: `/v2/images/${row.id}`,
      file: `/v2/images/${row.id}/file`,
      schema: '/v2/schemas/image',
    });
    expect(alpha).not.toHaveProperty('properties');
    const echo = body.images.find((i) => i.name === 'echo')!;
    expect(echo).toMatchObject({ status: 'queued', checksum: null, size: null, tags: [] });
  });

  it('paginates with limit=2 by following next to the end', async () => {
    const seen: unknown[] = [];
    let link: string | undefined = '/v2/images?limit=2';
    let pages = 0;
    while (link) {
      const { status, body }: { status: number; body: ListBody } = await getJson<ListBody>(link);
      expect(status).toBe(200);
      expect(body.first).toBe('/v2/images?limit=2');
      expect(body.images.length).toBeLessThanOrEqual(2);
      if (body.next) expect(body.images.length).toBe(2);
      seen.push(...body.images.map((i) => i.name));
      link = body.next;
      pages += 1;
      expect(pages).toBeLessThan(10);
    }
    expect(seen).toEqual(['golf', 'foxtrot', 'echo', 'charlie', 'bravo', 'alpha']);
    expect(pages).toBe(4); // 2 + 2 + 2, then an empty page without next

    // Over five images: 2 + 2 + 1, the last page not full and without next.
    const five: unknown[] = [];
    const sizes: number[] = [];
    link = '/v2/images?limit=2&status=active';
    while (link) {
      const { body }: { body: ListBody } = await getJson<ListBody>(link);
      five.push(...body.images.map((i) => i.name));
      sizes.push(body.images.length);
      link = body.next;
    }
    expect(five).toEqual(['golf', 'foxtrot', 'charlie', 'bravo', 'alpha']);
    expect(sizes).toEqual([2, 2, 1]);
  });

  it('keeps the query in next, pages in any sort order, and keeps repeated tags', async () => {
    const { body } = await getJson<ListBody>('/v2/images?tag=base&tag=lts&limit=1');
    expect(body.images.map((i) => i.name)).toEqual(['alpha']);
    expect(body.next).toBe(`/v2/images?tag=base&tag=lts&limit=1&marker=${idOf('alpha')}`);

    const byName: unknown[] = [];
    let link: string | undefined = '/v2/images?sort=name:asc&limit=3';
    while (link) {
      const { body: page }: { body: ListBody } = await getJson<ListBody>(link);
      byName.push(...page.images.map((i) => i.name));
      link = page.next;
    }
    expect(byName).toEqual(['alpha', 'bravo', 'charlie', 'echo', 'foxtrot', 'golf']);

    // size has NULLs (echo): they sort lowest, and paging across them loses nothing.
    const bySize: unknown[] = [];
    link = '/v2/images?sort_key=size&sort_dir=desc&limit=1';
    while (link) {
      const { body: page }: { body: ListBody } = await getJson<ListBody>(link);
      bySize.push(...page.images.map((i) => i.name));
      link = page.next;
    }
    expect(bySize).toHaveLength(6);
    expect(bySize[0]).toBe('charlie');
    expect(bySize.at(-1)).toBe('echo');
  });

  it('filters', async () => {
    expect(await names('?name=bravo')).toEqual(['bravo']);
    expect(await names('?name=in:alpha,"bravo",nope')).toEqual(['bravo', 'alpha']);
    expect(await names('?name=eq:alpha')).toEqual(['alpha']);
    expect(await names('?status=queued')).toEqual(['echo']);
    expect(await names('?status=in:queued,active&disk_format=qcow2')).toEqual(['bravo']);
    expect(await names('?visibility=public')).toEqual(['foxtrot']);
    expect(await names('?visibility=all&limit=100')).toHaveLength(6);
    expect(await names('?tag=base')).toEqual(['bravo', 'alpha']);
    expect(await names('?tag=base&tag=lts')).toEqual(['alpha']);
    expect(await names('?tag=nope')).toEqual([]);
    expect(await names('?size_min=5000')).toEqual(['charlie']);
    expect(await names('?size_max=0')).toEqual(['golf']);
    expect(await names('?size_min=1&size_max=5000&sort=name:asc')).toEqual(['alpha', 'bravo', 'foxtrot']);
    expect(await names('?ecluse_vendor=acme')).toEqual(['bravo', 'alpha']);
    expect(await names('?ecluse_vendor=acme&ecluse_bundle_id=b1')).toEqual(['alpha']);
    expect(await names(`?id=${idOf('charlie')}`)).toEqual(['charlie']);
    expect(await names(`?id=in:${idOf('charlie')},${idOf('alpha')}`)).toEqual(['charlie', 'alpha']);
    expect(await names(`?checksum=${fx.images[2]!.checksum}`)).toEqual(['charlie']);
    expect(await names('?protected=false&min_ram=0&container_format=bare')).toHaveLength(6);
    expect(await names('?min_ram=abc')).toEqual([]);
    expect(await names(`?created_at=gt:${fx.images[4]!.created_at}`)).toEqual(['golf', 'foxtrot']);
    expect(await names(`?created_at=lte:${fx.images[1]!.created_at}`)).toEqual(['bravo', 'alpha']);
    expect(await names(`?created_at=${fx.images[1]!.created_at}`)).toEqual(['bravo']);
    expect(await names('?updated_at=gte:2000-01-01')).toHaveLength(6);
    expect(await names('?member_status=all')).toHaveLength(6);
    // hidden images: left out by default, and os_hidden=true lists only them
    expect(await names('?os_hidden=true')).toEqual(['delta']);
    expect(await names('?os_hidden=False')).toHaveLength(6);
    expect(await names('?name=delta')).toEqual([]);
  });

  it('sorts', async () => {
    expect(await names('?sort=name:asc')).toEqual(['alpha', 'bravo', 'charlie', 'echo', 'foxtrot', 'golf']);
    expect(await names('?sort=name')).toEqual(['golf', 'foxtrot', 'echo', 'charlie', 'bravo', 'alpha']);
    expect(await names('?sort_key=name&sort_dir=asc')).toEqual([
      'alpha',
      'bravo',
      'charlie',
      'echo',
      'foxtrot',
      'golf',
    ]);
    expect(await names('?sort_dir=asc')).toEqual(['alpha', 'bravo', 'charlie', 'echo', 'foxtrot', 'golf']);
    expect(await names('?sort=disk_format:desc,name:asc')).toEqual([
      'alpha',
      'charlie',
      'echo',
      'foxtrot',
      'golf',
      'bravo',
    ]);
    expect(await names('?sort_key=disk_format&sort_key=name&sort_dir=asc&sort_dir=desc')).toEqual([
      'bravo',
      'golf',
      'foxtrot',
      'echo',
      'charlie',
      'alpha',
    ]);
  });

  it.each([
    ['limit=abc', 'limit param must be an integer'],
    ['limit=-1', 'limit param must be positive'],
    ['limit=1.5', 'limit param must be an integer'],
    ['marker=abc', 'No image found with ID abc'],
    ['marker=11111111-1111-1111-1111-111111111111', 'No image found with ID 11111111-1111-1111-1111-111111111111'],
    ['sort=name:asc&sort_key=id', 'Old and new sorting syntax cannot be combined'],
    [
      'sort_key=owner',
      'Invalid sort key: owner. It must be one of the following: name, status, container_format, disk_format, size, id, created_at, updated_at.',
    ],
    ['sort_dir=up', 'Invalid sort direction: up'],
    ['sort=name:up', 'Invalid sort direction: up'],
    ['sort_key=name&sort_dir=asc&sort_dir=desc', 'Number of sort dirs does not match the number of sort keys'],
    ['size_min=big', 'Unable to filter on a range with a non-numeric value.'],
    ['os_hidden=maybe', "Invalid value 'maybe' for 'os_hidden' filter. Valid values are 'true' or 'false'."],
    ['protected=1', "Invalid value '1' for 'protected' filter. Valid values are 'true' or 'false'."],
    ['visibility=everyone', 'Invalid visibility value: everyone'],
    ['created_at=after:2024-01-01', 'Unable to filter on a unknown operator.'],
    ['created_at=gt:yesterday', 'Bad "created_at" query filter format. Use ISO 8601 DateTime notation.'],
    ['name=in:"a,b', 'Invalid filter value "a,b. The quote is not closed.'],
    ['bad%20key=1', 'Invalid filter: bad key'],
    ['name=a&name=b', "Query parameter 'name' may be given only once"],
  ])('400 for %s', async (q, message) => {
    const r = await get(`/v2/images?${q}`, JSON_ONLY);
    expect(r.status).toBe(400);
    expect(r.headers.get('x-openstack-request-id')).toMatch(REQ_ID);
    expect(await r.json()).toEqual({
      message: `${message}<br /><br />\n\n\n`,
      code: '400 Bad Request',
      title: 'Bad Request',
    });
  });

  it('lists community images only when asked for', async () => {
    const row = fx.add({ name: 'hotel', visibility: 'community' });
    try {
      expect(await names('')).not.toContain('hotel');
      expect(await names('?visibility=community')).toEqual(['hotel']);
      expect(await names('?visibility=all')).toContain('hotel');
      expect((await get(`/v2/images/${row.id}`)).status).toBe(200);
    } finally {
      fx.db.prepare('DELETE FROM images WHERE id = ?').run(row.id);
      fx.images.pop();
    }
  });

  it('caps limit at 1000 and accepts limit=0', async () => {
    expect((await getJson<ListBody>('/v2/images?limit=5000')).body.images).toHaveLength(6);
    const zero = await getJson<ListBody>('/v2/images?limit=0');
    expect(zero.body).toEqual({ images: [], first: '/v2/images?limit=0', schema: '/v2/schemas/images' });
  });
});
