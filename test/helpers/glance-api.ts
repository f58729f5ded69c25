/**
 * What the embedded Glance API's read tests share (test/verifier/glance/api.test.ts and api-list.test.ts): their
 * seven-image catalog, served for the whole test file, and small request helpers over it.
 */
import { expect } from 'vitest';
import { useGlanceFixture, type GlanceFixture } from './glance-fixture.js';

export const REQ_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const JSON_ONLY = { Accept: 'application/json' };

export interface ListBody {
  images: Record<string, unknown>[];
  first: string;
  schema: string;
  next?: string;
}

export interface GlanceApi {
  fx: GlanceFixture;
  get: (p: string, headers?: Record<string, string>) => Promise<Response>;
  getJson: <T = Record<string, unknown>>(p: string) => Promise<{ status: number; body: T }>;
  /** The names the list answers for a query string (`?…`, or '' for none), after checking it answered 200. */
  names: (q: string) => Promise<unknown[]>;
  idOf: (name: string) => string;
}

/**
 * Serves the catalog for the calling test file: six visible images (alpha, the first inserted, to golf, the newest)
 * and delta, hidden; echo has no data and golf is empty.
 */
export function useGlanceApi(): GlanceApi {
  const fx = useGlanceFixture([
    { name: 'alpha', tags: ['base', 'lts'], properties: { ecluse_bundle_id: 'b1', ecluse_vendor: 'acme' } },
    { name: 'bravo', tags: ['base'], disk_format: 'qcow2', properties: { ecluse_vendor: 'acme' } },
    { name: 'charlie', data: Buffer.alloc(10_000, 7), properties: { ecluse_vendor: 'other' } },
    { name: 'delta', os_hidden: 1 },
    { name: 'echo', data: null },
    { name: 'foxtrot', visibility: 'public' },
    { name: 'golf', data: Buffer.alloc(0) },
  ]);
  const get = (p: string, headers: Record<string, string> = {}): Promise<Response> => fetch(fx.url + p, { headers });
  const getJson = async <T = Record<string, unknown>>(p: string): Promise<{ status: number; body: T }> => {
    const r = await get(p, JSON_ONLY);
    return { status: r.status, body: (await r.json()) as T };
  };
  const names = async (q: string): Promise<unknown[]> => {
    const { status, body } = await getJson<ListBody>(`/v2/images${q}`);
    expect(status).toBe(200);
    return body.images.map((i) => i.name);
  };
  const idOf = (name: string): string => fx.images.find((i) => i.name === name)!.id;
  return { fx, get, getJson, names, idOf };
}
