/**
 * Reading an outside Glance (Image API v2) for a glance feed. Everything it sends is bounded and checked before use:
 * each JSON page (size, depth, then zod), the number of pages and images, each record's properties. The list asks
 * Glance to filter where it can (status, exact name, tags, properties), but the selection is always decided again
 * here on the records: a server's filtering is never trusted. Of a `next` link only the marker is taken (the request
 * is rebuilt against the declared endpoint, so a link never leads to another host), and a marker seen twice ends the
 * listing with an error rather than a loop. The token, when there is one, goes in X-Auth-Token; redirects are refused
 * so that it never follows one elsewhere.
 */
import picomatch from 'picomatch';
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { LIMITS } from '../../sneakernet/limits.js';
import { parseBoundedJson } from '../../sneakernet/statement.js';
import { GLANCE_IMAGE_ID } from '../../sneakernet/evidence.js';
import { CORE_ATTRIBUTES } from '../../sneakernet/glance-vocabulary.js';
import { readBoundedBody } from './download.js';
import { glanceSource, type GlanceFeedConfig, type ResolvedGlanceConfig } from './glance-config.js';

/** Bounds on what an outside Glance may send. */
export const LIMITS_GLANCE = {
  /** Images asked per page (Glance's maximum is 1000). */
  pageLimit: 200,
  /** Bytes of one page of the list. */
  pageBytes: 8 * 1024 * 1024,
  /** Pages of one listing (so at most 100,000 images are looked at). */
  pages: 500,
  /** Attributes of one image record, tags of one image, and the length of one property value. */
  keysPerImage: 512,
  tagsPerImage: 128,
  propertyValueLength: 65_535,
  /** The largest image fetched (what a bundle may carry). */
  imageBytes: LIMITS.artifactBytes,
} as const;

/** One image as the feed sees it. */
export interface GlanceImage {
  id: string;
  name: string | null;
  status: string;
  size: number | null;
  checksum: string | null;
  osHashAlgo: string | null;
  osHashValue: string | null;
  diskFormat: string | null;
  containerFormat: string | null;
  tags: string[];
  createdAt: string;
  /** The extra properties (flat strings). */
  properties: Record<string, string>;
  /** The record as received, kept beside the artifact as evidence. */
  raw: Record<string, unknown>;
}

/** Attributes of the record that are not extra properties (glance-compat.md): the same list our Glance API uses. */
const CORE = CORE_ATTRIBUTES;

/** Query parameters Glance reads as something other than a property filter. */
const RESERVED_QUERY = new Set([...CORE, 'limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'member_status']);
RESERVED_QUERY.add('tag');
RESERVED_QUERY.add('size_min');
RESERVED_QUERY.add('size_max');

const hexOrNull = (re: RegExp) => z.string().regex(re).nullable().optional();

const imageSchema = z.looseObject({
  id: z.string().regex(GLANCE_IMAGE_ID, 'a UUID'),
  name: z.string().max(255).nullable().optional(),
  status: z.string().max(32),
  size: z.number().int().nonnegative().max(LIMITS_GLANCE.imageBytes).nullable().optional(),
  checksum: hexOrNull(/^[0-9a-fA-F]{32}$/),
  os_hash_algo: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,32}$/)
    .nullable()
    .optional(),
  os_hash_value: hexOrNull(/^(?:[0-9a-fA-F]{2}){16,128}$/),
  disk_format: z.string().max(64).nullable().optional(),
  container_format: z.string().max(64).nullable().optional(),
  tags: z.array(z.string().max(255)).max(LIMITS_GLANCE.tagsPerImage).default([]),
  created_at: z.string().max(64).default(''),
});

const pageSchema = z.looseObject({
  images: z.array(z.unknown()).max(LIMITS_GLANCE.pageLimit),
  next: z.string().max(8192).optional(),
});

function feedError(c: GlanceFeedConfig, why: string): EcluseError {
  return new EcluseError('E_FEED', `feed ${c.name}: ${glanceSource(c)}: ${why}`, { check: 'feed' });
}

/** The record's extra properties; E_FEED when there are more than a record may carry. */
function propertiesOf(c: GlanceFeedConfig, rec: Record<string, unknown>): Record<string, string> {
  const keys = Object.keys(rec);
  if (keys.length > LIMITS_GLANCE.keysPerImage) {
    throw feedError(
      c,
      `image ${String(rec.id)} has ${keys.length} attributes, more than ${LIMITS_GLANCE.keysPerImage}`,
    );
  }
  const out: Record<string, string> = {};
  for (const k of keys) {
    const v = rec[k];
    if (CORE.has(k) || typeof v !== 'string' || k.length > 255 || v.length > LIMITS_GLANCE.propertyValueLength)
      continue;
    out[k] = v;
  }
  return out;
}

export function toImage(c: GlanceFeedConfig, raw: unknown): GlanceImage {
  const r = imageSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw feedError(c, `an image record is malformed (${issue ? `${issue.path.join('.')}: ${issue.message}` : ''})`);
  }
  const d = r.data;
  const lower = (v: string | null | undefined) => (v ? v.toLowerCase() : null);
  return {
    id: d.id.toLowerCase(),
    name: d.name ?? null,
    status: d.status,
    size: d.size ?? null,
    checksum: lower(d.checksum),
    osHashAlgo: lower(d.os_hash_algo),
    osHashValue: lower(d.os_hash_value),
    diskFormat: d.disk_format ?? null,
    containerFormat: d.container_format ?? null,
    tags: d.tags,
    createdAt: d.created_at,
    properties: propertiesOf(c, d),
    raw: d,
  };
}

const isGlob = (pattern: string) => picomatch.scan(pattern).isGlob;

/** The filters Glance applies itself (a property or tag it might read otherwise is left to `selects`). */
export function listQuery(c: GlanceFeedConfig): URLSearchParams {
  const q = new URLSearchParams();
  q.set('limit', String(LIMITS_GLANCE.pageLimit));
  q.set('status', 'active');
  if (!isGlob(c.matchName)) q.set('name', c.matchName.includes(':') ? `eq:${c.matchName}` : c.matchName);
  for (const t of c.matchTags) if (!t.includes(',')) q.append('tag', t);
  for (const [k, v] of Object.entries(c.matchProperties)) {
    if (!RESERVED_QUERY.has(k) && !v.includes(':') && !v.includes(',')) q.set(k, v);
  }
  if (c.visibility) q.set('visibility', c.visibility);
  return q;
}

/** Whether the feed takes this image: active, named as matched, with every tag and property asked for. */
export function selects(c: GlanceFeedConfig, image: GlanceImage): boolean {
  if (image.status !== 'active' || image.name === null) return false;
  const nameOk = isGlob(c.matchName)
    ? picomatch.isMatch(image.name, c.matchName, { dot: true })
    : image.name === c.matchName;
  return (
    nameOk &&
    c.matchTags.every((t) => image.tags.includes(t)) &&
    Object.entries(c.matchProperties).every(([k, v]) => image.properties[k] === v)
  );
}

/** `endpoint` without trailing slashes or a trailing `/v2`: the root the `/v2/...` paths hang from. */
export function glanceRoot(endpoint: string): string {
  return endpoint.replace(/\/+$/, '').replace(/\/v2$/, '');
}

export class GlanceSource {
  readonly root: string;

  constructor(
    private readonly config: ResolvedGlanceConfig,
    private token: string | undefined,
    private readonly timeoutMs = 60_000,
  ) {
    this.root = glanceRoot(config.endpoint);
  }

  /** The token sent from now on (a renewed Keystone token). */
  useToken(token: string): void {
    this.token = token;
  }

  headers(): Record<string, string> {
    return this.token === undefined ? {} : { 'X-Auth-Token': this.token };
  }

  fileUrl(id: string): string {
    return `${this.root}/v2/images/${id}/file`;
  }

  imageUrl(id: string): string {
    return `${this.root}/v2/images/${id}`;
  }

  /** A JSON document of at most `max` bytes. */
  private async getJson(url: string, max: number): Promise<unknown> {
    const c = this.config;
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { Accept: 'application/json', ...this.headers() },
        redirect: 'error',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (e) {
      throw feedError(c, `${(e as Error).message}${(e as Error).cause ? ` (${String((e as Error).cause)})` : ''}`);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw feedError(
        c,
        `HTTP ${res.status}: the staging Glance refused the ${this.token ? 'token' : 'request (no token)'}`,
      );
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw feedError(c, `HTTP ${res.status}`);
    }
    const body = await readBoundedBody(res, max);
    if (body === null) throw feedError(c, `a response of more than ${max} bytes`);
    try {
      return parseBoundedJson(body, 'the response', max);
    } catch (e) {
      throw feedError(c, (e as Error).message);
    }
  }

  /** Every image the list returns, page after page (bounded). */
  async *list(query: URLSearchParams): AsyncGenerator<GlanceImage> {
    const c = this.config;
    const seen = new Set<string>();
    let marker: string | undefined;
    for (let page = 0; ; page++) {
      if (page >= LIMITS_GLANCE.pages) {
        throw feedError(c, `the image list goes on for more than ${LIMITS_GLANCE.pages} pages; narrow the selection`);
      }
      const q = new URLSearchParams(query);
      if (marker) q.set('marker', marker);
      const body = pageSchema.safeParse(
        await this.getJson(`${this.root}/v2/images?${q.toString()}`, LIMITS_GLANCE.pageBytes),
      );
      if (!body.success) throw feedError(c, 'the image list is not a Glance v2 list ({"images": [...]})');
      for (const raw of body.data.images) yield toImage(c, raw);
      const next = body.data.next;
      if (next === undefined || body.data.images.length === 0) return;
      let m: string | null;
      try {
        m = new URL(next, 'http://next.invalid').searchParams.get('marker');
      } catch {
        m = null;
      }
      if (!m || !GLANCE_IMAGE_ID.test(m))
        throw feedError(c, 'the image list names a next page without a usable marker');
      if (seen.has(m)) throw feedError(c, `the image list repeats the marker ${m}`);
      seen.add(m);
      marker = m;
    }
  }
}
