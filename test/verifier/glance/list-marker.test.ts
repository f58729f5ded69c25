/**
 * Paging by marker walks the whole catalog exactly once, in order, whichever keyset form the query takes: the
 * row-value range (one direction over NOT NULL keys: the default created_at/id) or the general form (a nullable key,
 * mixed directions). Images share creation times, so the id tie-break is exercised.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { glanceFixture, type GlanceFixture } from '../../helpers/glance-fixture.js';

let fx: GlanceFixture;

beforeAll(async () => {
  fx = await glanceFixture(
    Array.from({ length: 23 }, (_, i) => ({
      name: i % 5 === 0 ? (null as unknown as string) : `img-${String(i % 7).padStart(2, '0')}`,
      created_at: `2026-01-0${1 + (i % 3)}T00:00:00Z`,
      updated_at: `2026-02-0${1 + (i % 4)}T00:00:00Z`,
      data: null,
    })),
  );
});
afterAll(async () => {
  await fx?.close();
});

async function ids(query: string): Promise<{ ids: string[]; next?: string }> {
  const r = await fetch(`${fx.url}${query}`, { headers: { Accept: 'application/json' } });
  expect(r.status, query).toBe(200);
  const body = (await r.json()) as { images: Array<{ id: string }>; next?: string };
  return { ids: body.images.map((i) => i.id), ...(body.next ? { next: body.next } : {}) };
}

async function walk(sort: string): Promise<string[]> {
  const seen: string[] = [];
  let next: string | undefined = `/v2/images?limit=4${sort}`;
  for (let pages = 0; next && pages < 50; pages++) {
    const page: { ids: string[]; next?: string } = await ids(next);
    seen.push(...page.ids);
    next = page.next;
  }
  return seen;
}

describe('paging by marker', () => {
  for (const sort of [
    '',
    '&sort_key=updated_at&sort_dir=asc',
    '&sort_key=name&sort_dir=asc',
    '&sort=name:desc,created_at:asc',
  ]) {
    it(`visits every image once, in the order of one big page (${sort || 'default sort'})`, async () => {
      const all = (await ids(`/v2/images?limit=1000${sort}`)).ids;
      expect(all).toHaveLength(23);
      expect(await walk(sort)).toEqual(all);
    });
  }
});
