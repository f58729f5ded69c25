/**
 * `GET /v2/images` pages joined from each image's cached JSON text (verifier/glance/catalog-reads.ts), through the real
 * server and SQLite: a page is byte for byte `pyJson` of the body built from its rows (non-ASCII escaped as Python
 * does), served from the cache as when first built; a change to the catalog is on the very next page, whether another
 * connection committed it (an import in another process) or the server's own, and even when it leaves `updated_at`
 * as it was (two changes within one second). The same for the bodies kept whole (`GET /v2/images/{id}` and pages
 * asked again), which are kept per scope: a project's user never gets a body kept for an admin or another project.
 */
import Database from 'better-sqlite3';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pyJson } from '../../../verifier/glance/errors.js';
import { readScope } from '../../../verifier/glance/images-read.js';
import { CatalogReads } from '../../../verifier/glance/catalog-reads.js';
import { imageRecord } from '../../../verifier/glance/record.js';
import { imageById } from '../../../verifier/image-catalog.js';
import { glanceFixture, type GlanceFixture } from '../../helpers/glance-fixture.js';

let fx: GlanceFixture;

beforeAll(async () => {
  fx = await glanceFixture(
    Array.from({ length: 7 }, (_, i) => ({
      name: `img-${i}`,
      created_at: `2026-01-0${1 + (i % 3)}T00:00:00Z`,
      properties: { description: `café ${i} 日本 \u007f`, ecluse_version: `1.${i}` },
      data: null,
    })),
  );
});
afterAll(async () => {
  await fx?.close();
});

async function pageText(query: string): Promise<string> {
  const r = await fetch(`${fx.url}${query}`, { headers: { Accept: 'application/json' } });
  expect(r.status, query).toBe(200);
  return r.text();
}

/** What the page's body is when built from the rows now in the catalog. */
function expectedPage(text: string, first: string): string {
  const body = JSON.parse(text) as { images: Array<{ id: string }>; next?: string };
  const rows = body.images.map((i) => imageById(fx.db, i.id));
  return pyJson({
    images: rows.map((r) => imageRecord(r!)),
    first,
    schema: '/v2/schemas/images',
    ...(body.next ? { next: body.next } : {}),
  });
}

const nameOf = (text: string, id: string) =>
  (JSON.parse(text) as { images: Array<{ id: string; name: string }> }).images.find((i) => i.id === id)?.name;

describe('list pages from cached image texts', () => {
  it('are byte for byte the pyJson of the body built from the rows, first built and then from the cache', async () => {
    for (let round = 0; round < 2; round++) {
      const text = await pageText('/v2/images?limit=4');
      expect(text).toContain('caf\\u00e9');
      expect(text).toContain('"next": "/v2/images?limit=4&marker=');
      expect(text).toBe(expectedPage(text, '/v2/images?limit=4'));
      const all = await pageText('/v2/images');
      expect(JSON.parse(all)).not.toHaveProperty('next');
      expect(all).toBe(expectedPage(all, '/v2/images'));
    }
  });

  it('a change committed by another connection is on the next page, updated_at unchanged', async () => {
    const id = fx.images[2]!.id;
    expect(nameOf(await pageText('/v2/images'), id)).toBe('img-2');
    const other = new Database(path.join(fx.home, 'ecluse.sqlite'));
    try {
      other.prepare('UPDATE images SET name = ? WHERE id = ?').run('renamed-elsewhere', id);
    } finally {
      other.close();
    }
    const text = await pageText('/v2/images');
    expect(nameOf(text, id)).toBe('renamed-elsewhere');
    expect(text).toBe(expectedPage(text, '/v2/images'));
  });

  it("a change through the server's own connection is on the next page too", async () => {
    const id = fx.images[4]!.id;
    expect(nameOf(await pageText('/v2/images'), id)).toBe('img-4');
    fx.db.prepare('UPDATE images SET name = ? WHERE id = ?').run('renamed-here', id);
    const text = await pageText('/v2/images');
    expect(nameOf(text, id)).toBe('renamed-here');
    expect(text).toBe(expectedPage(text, '/v2/images'));
  });

  it('one image asked again is the same bytes, and a change by another connection is in the next answer', async () => {
    const id = fx.images[5]!.id;
    const show = async () => {
      const r = await fetch(`${fx.url}/v2/images/${id}`);
      expect(r.status).toBe(200);
      return r.text();
    };
    const first = await show();
    expect(first).toBe(pyJson(imageRecord(imageById(fx.db, id)!)));
    expect(await show()).toBe(first);
    const other = new Database(path.join(fx.home, 'ecluse.sqlite'));
    try {
      other.prepare('UPDATE images SET name = ? WHERE id = ?').run('renamed-for-show', id);
    } finally {
      other.close();
    }
    const after = await show();
    expect(JSON.parse(after)).toMatchObject({ id, name: 'renamed-for-show' });
    expect(after).toBe(pyJson(imageRecord(imageById(fx.db, id)!)));
  });

  it('a refused read is not kept: an unknown marker is 400 each time, with the same words', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    for (let round = 0; round < 2; round++) {
      const r = await fetch(`${fx.url}/v2/images?marker=${missing}`, { headers: { Accept: 'application/json' } });
      expect(r.status).toBe(400);
      expect(await r.text()).toContain(`No image found with ID ${missing}`);
    }
  });
});

describe('the bodies kept', () => {
  it('count their keys against the bound: long query strings with small bodies evict, never pile up', () => {
    const pages = new CatalogReads(fx.db, { bodyBytes: 20_000 });
    let made = 0;
    const read = (key: string) => pages.body(key, () => (made++, '{"images": []}')).toString();
    const long = (i: number) => `* /v2/images?member_status=${String(i).repeat(6000).slice(0, 6000)}`;
    for (let i = 0; i < 10; i++) expect(read(long(i))).toBe('{"images": []}');
    expect(made).toBe(10);
    expect(pages.keptBodyBytes).toBeLessThanOrEqual(20_000);
    expect(pages.keptBodyBytes).toBeGreaterThan(6000 * 2);
    // The newest is kept (not made again); the oldest was evicted (made again).
    read(long(9));
    expect(made).toBe(10);
    read(long(0));
    expect(made).toBe(11);
  });
});

describe('the scope a body is kept under', () => {
  it("is the whole catalog for admins, écluse's tokens and loopback, and each project's own otherwise", () => {
    const all = readScope({ role: 'reader', tokenId: undefined });
    expect(readScope({ role: 'admin', tokenId: 't1' })).toBe(all);
    expect(readScope({ role: 'admin', tokenId: undefined, project: 'p1' })).toBe(all);
    const p1 = readScope({ role: 'member', tokenId: undefined, project: 'p1' });
    const p2 = readScope({ role: 'member', tokenId: undefined, project: 'p2' });
    const none = readScope({ role: 'member', tokenId: undefined, project: null });
    expect(new Set([all, p1, p2, none]).size).toBe(4);
    expect(readScope({ role: 'reader', tokenId: undefined, project: 'p1' })).toBe(p1);
  });
});
