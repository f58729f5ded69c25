/**
 * Sends one request to both peers and compares what clients depend on: the status, the headers clients read, and
 * the body — image records and lists value by value (timestamps by form), error bodies by code/title/message,
 * anything else by field names, types and nullability plus values once the base URL is normalized.
 * Tolerated differences come only from differences.ts.
 */
import { expect } from 'vitest';
import { difference } from './differences.js';
import type { Peer } from './peers.js';

export interface Req {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  json?: unknown;
  body?: Buffer | string;
  /** Content-Type (with json, default application/json). */
  type?: string;
}

export interface Res {
  status: number;
  headers: Headers;
  raw: Buffer;
  json: unknown;
}

export interface CompareOptions {
  /** Compare only the first line of error messages (difference 'schema-error-detail'). */
  messageFirstLine?: boolean;
  /** Compare bodies by shape only (names, types, nullability), not values. */
  shapeOnly?: boolean;
  /** Collapse repeated parameters of écluse's `first`/`next` as Glance does (difference 'repeated-params-in-links'). */
  collapseRepeatedInLinks?: boolean;
}

/** A link with each repeated parameter once, at its first place, with its last value (Glance's MultiDict → dict). */
function collapseLink(link: string): string {
  const q = link.indexOf('?');
  if (q < 0) return link;
  const merged = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(link.slice(q + 1))) merged.set(k, v);
  return `${link.slice(0, q)}?${new URLSearchParams([...merged]).toString()}`;
}

const REQ_ID = /^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;
const BASE = '<BASE>';

export async function send(peer: Peer, r: Req): Promise<Res> {
  const headers: Record<string, string> = { Accept: 'application/json', ...r.headers };
  let body: Buffer | string | undefined = r.body;
  if (r.json !== undefined) {
    body = JSON.stringify(r.json);
    headers['Content-Type'] = r.type ?? 'application/json';
  } else if (r.type) headers['Content-Type'] = r.type;
  const res = await fetch(peer.url + r.path, { method: r.method ?? 'GET', headers, body, redirect: 'manual' });
  const raw = Buffer.from(await res.arrayBuffer());
  let json: unknown;
  if ((res.headers.get('content-type') ?? '').startsWith('application/json') && raw.length > 0) {
    json = JSON.parse(raw.toString('utf8')) as unknown;
  }
  return { status: res.status, headers: res.headers, raw, json };
}

/** A value's shape: names, JSON types and nullability, recursively (arrays by the shapes of their elements). */
export function shape(v: unknown): unknown {
  if (v === null) return 'null';
  if (Array.isArray(v))
    return [...new Set(v.map((x) => JSON.stringify(shape(x))))].sort().map((s) => JSON.parse(s) as unknown);
  if (typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, shape((v as Record<string, unknown>)[k])]),
    );
  }
  return typeof v;
}

function normalizeUrls(v: unknown, base: string): unknown {
  if (typeof v === 'string') return v.split(base).join(BASE);
  if (Array.isArray(v)) return v.map((x) => normalizeUrls(x, base));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalizeUrls(x, base)]));
  }
  return v;
}

const isImage = (v: unknown): v is Record<string, unknown> =>
  !!v && typeof v === 'object' && 'self' in v && 'status' in v && 'id' in v;

/** An image record as compared: without `stores` (difference), timestamps by form, tags sorted (difference). */
export function normalizeImage(img: Record<string, unknown>): Record<string, unknown> {
  difference('no-stores-field');
  difference('tag-order');
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(img)) {
    if (k === 'stores') continue;
    if (k === 'created_at' || k === 'updated_at') out[k] = typeof v === 'string' && TIME.test(v) ? '<TIME>' : v;
    else if (k === 'tags' && Array.isArray(v)) out[k] = [...(v as string[])].sort();
    else out[k] = v;
  }
  return out;
}

function normalizeBody(v: unknown, base: string, o: CompareOptions): unknown {
  const n = normalizeUrls(v, base);
  if (isImage(n)) return normalizeImage(n);
  if (n && typeof n === 'object' && !Array.isArray(n)) {
    const obj = { ...(n as Record<string, unknown>) };
    if (Array.isArray(obj.images)) obj.images = (obj.images as Record<string, unknown>[]).map(normalizeImage);
    // The image schemas: without `stores` (difference no-stores-field).
    const schemaProps = (o2: unknown): Record<string, unknown> | undefined =>
      (o2 as { properties?: Record<string, unknown> } | undefined)?.properties;
    if (obj.name === 'image' && schemaProps(obj)) {
      difference('no-stores-field');
      obj.properties = { ...schemaProps(obj) };
      delete (obj.properties as Record<string, unknown>).stores;
    }
    if (obj.name === 'images' && schemaProps(obj)) {
      difference('no-stores-field');
      const items = (schemaProps(obj)!.images as { items: Record<string, unknown> }).items;
      const props = { ...(items.properties as Record<string, unknown>) };
      delete props.stores;
      obj.properties = { ...schemaProps(obj), images: { type: 'array', items: { ...items, properties: props } } };
    }
    if (obj['import-methods'] && typeof obj['import-methods'] === 'object') {
      difference('no-import-methods');
      obj['import-methods'] = { ...obj['import-methods'], value: '<METHODS>' };
    }
    if (Array.isArray(obj.stores)) {
      difference('store-id');
      obj.stores = (obj.stores as Record<string, unknown>[]).map((s) => ({ ...s, id: '<STORE>' }));
    }
    if (typeof obj.message === 'string' && 'code' in obj && 'title' in obj && o.messageFirstLine) {
      difference('schema-error-detail');
      obj.message = obj.message.split('\n')[0];
    }
    return obj;
  }
  return n;
}

const CLIENT_HEADERS = ['location', 'content-md5', 'content-range', 'accept-patch', 'allow'] as const;

/** Sends `r` to both and compares. Returns both responses for further checks. */
export async function both(
  peers: { glance: Peer; ecluse: Peer },
  step: string,
  r: Req,
  o: CompareOptions = {},
): Promise<{ glance: Res; ecluse: Res }> {
  const g = await send(peers.glance, r);
  const e = await send(peers.ecluse, r);
  const at = `${step}: ${r.method ?? 'GET'} ${r.path}`;
  expect.soft(e.status, `${at}: status`).toBe(g.status);
  expect.soft(e.headers.get('x-openstack-request-id') ?? '', `${at}: request id`).toMatch(REQ_ID);
  if (g.status !== 204) {
    const ct = (h: Headers) => (h.get('content-type') ?? '').split(';')[0];
    expect.soft(ct(e.headers), `${at}: content-type`).toBe(ct(g.headers));
  } else {
    difference('no-content-type-on-204');
    expect.soft(e.raw.length, `${at}: 204 body`).toBe(0);
  }
  for (const h of CLIENT_HEADERS) {
    const norm = (v: string | null, base: string) => (v === null ? null : v.split(base).join(BASE));
    expect
      .soft(norm(e.headers.get(h), peers.ecluse.url), `${at}: header ${h}`)
      .toBe(norm(g.headers.get(h), peers.glance.url));
  }
  if (g.headers.has('openstack-image-import-methods')) {
    difference('no-import-methods');
    expect.soft(e.headers.has('openstack-image-import-methods'), `${at}: OpenStack-image-import-methods`).toBe(true);
  }
  if (g.json !== undefined || e.json !== undefined) {
    const gb = normalizeBody(g.json, peers.glance.url, o);
    const eb = normalizeBody(e.json, peers.ecluse.url, o);
    if (o.collapseRepeatedInLinks && eb && typeof eb === 'object') {
      difference('repeated-params-in-links');
      const links = eb as { first?: string; next?: string };
      if (links.first) links.first = collapseLink(links.first);
      if (links.next) links.next = collapseLink(links.next);
    }
    expect.soft(shape(eb), `${at}: body shape`).toEqual(shape(gb));
    if (!o.shapeOnly) expect.soft(eb, `${at}: body`).toEqual(gb);
  } else if ((g.headers.get('content-type') ?? '') === 'application/octet-stream') {
    expect.soft(e.headers.get('content-length'), `${at}: content-length`).toBe(g.headers.get('content-length'));
    expect.soft(e.raw.equals(g.raw), `${at}: bytes`).toBe(true);
  }
  return { glance: g, ecluse: e };
}
