/**
 * `GET /v2/images` query parameters: strict parsing into a typed query, then SQL with bound parameters only.
 *
 * Semantics follow the reference Glance (25.1.0):
 *   limit      default 25, capped at 1000; not an integer → 400; negative → 400
 *   marker     id of the last image of the previous page; unknown → 400
 *   sort       `sort_key`/`sort_dir` (repeatable; one dir applies to all keys) or `sort=k[:dir],...` (dir default
 *              desc); mixing the two → 400; default `created_at desc`; `created_at` then `id` always break ties
 *   filters    name/id/status/container_format/disk_format (`in:a,"b,c"` and `eq:` operators), visibility
 *              (`all`; community images only when asked for), os_hidden (default false: hidden images are left out), protected, checksum, owner,
 *              os_hash_*, size/virtual_size/min_disk/min_ram, size_min/size_max, created_at/updated_at with
 *              gt/gte/lt/lte/eq/neq, tag (repeat = AND), and any other key as an extra property by equality.
 * Identifiers in SQL come only from the fixed tables below; every user value is a bound parameter.
 */
import { glanceTime, type Db } from '../db.js';
import { imageById, type ImageRow } from '../image-catalog.js';
import { badRequest } from './errors.js';
import { CORE_ATTRIBUTES } from '../../sneakernet/glance-vocabulary.js';

export const DEFAULT_LIMIT = 25;
export const MAX_LIMIT = 1000;

export const SORT_KEYS = [
  'name',
  'status',
  'container_format',
  'disk_format',
  'size',
  'id',
  'created_at',
  'updated_at',
] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type SortDir = 'asc' | 'desc';
export interface SortSpec {
  key: SortKey;
  dir: SortDir;
}

const VISIBILITIES = ['public', 'private', 'shared', 'community'] as const;
const MEMBER_STATUSES = ['pending', 'accepted', 'rejected', 'all'];
const PROPERTY_KEY = /^[A-Za-z0-9_.:-]+$/;

/** Text columns that take Glance's `in:` and `eq:` operators. */
const OPERATOR_COLUMNS = ['name', 'id', 'status', 'container_format', 'disk_format'] as const;
/** Text columns compared by plain equality. */
const TEXT_COLUMNS = ['checksum', 'owner', 'os_hash_algo', 'os_hash_value'] as const;
const INT_COLUMNS = ['size', 'virtual_size', 'min_disk', 'min_ram'] as const;
const BOOL_COLUMNS = ['protected', 'os_hidden'] as const;
const TIME_COLUMNS = ['created_at', 'updated_at'] as const;
const TIME_OPS = { gt: '>', gte: '>=', lt: '<', lte: '<=', eq: '=', neq: '!=' } as const;

type Column =
  | (typeof OPERATOR_COLUMNS)[number]
  | (typeof TEXT_COLUMNS)[number]
  | (typeof INT_COLUMNS)[number]
  | (typeof BOOL_COLUMNS)[number]
  | 'visibility';

export type Filter =
  | { kind: 'in'; column: Column; values: (string | number)[] }
  | { kind: 'range'; column: 'size'; op: '>=' | '<='; value: number }
  | { kind: 'time'; column: (typeof TIME_COLUMNS)[number]; op: (typeof TIME_OPS)[keyof typeof TIME_OPS]; value: string }
  | { kind: 'tag'; value: string }
  | { kind: 'property'; key: string; value: string }
  | { kind: 'nothing' }
  /** A condition built elsewhere (access.ts: what a Keystone project may see), with its bound values. */
  | { kind: 'sql'; sql: string; values: (string | number)[] };

export interface ListQuery {
  limit: number;
  marker: string | undefined;
  /** The effective order, tie-breakers included. */
  sort: SortSpec[];
  filters: Filter[];
  /** The request's parameters without `marker`, in order, for the `first` and `next` links. */
  linkParams: [string, string][];
}

const REPEATABLE = new Set(['tag', 'sort_key', 'sort_dir']);

const includes = <T extends string>(list: readonly T[], v: string): v is T => (list as readonly string[]).includes(v);

/** Glance's `split_filter_value_for_quotes`: `a,"b,c",d` → [a, b,c, d]. */
export function splitInValues(value: string): string[] {
  const quotes = (value.match(/(?<!\\)"/g) ?? []).length;
  if (quotes % 2 !== 0) throw badRequest(`Invalid filter value ${value}. The quote is not closed.`);
  const out: string[] = [];
  const re = /"([^"\\]*(?:\\.[^"\\]*)*)",?|([^,]+),?|,/g;
  for (const m of value.matchAll(re)) out.push(m[1] ?? m[2] ?? '');
  return out;
}

function parseBool(name: string, value: string): number {
  const v = value.toLowerCase();
  if (v === 'true') return 1;
  if (v === 'false') return 0;
  throw badRequest(`Invalid value '${value}' for '${name}' filter. Valid values are 'true' or 'false'.`);
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/** An ISO 8601 date-time as the catalog stores it (`YYYY-MM-DDTHH:MM:SSZ`, UTC), or undefined. */
export function normalizeIsoTime(value: string): string | undefined {
  const m = ISO.exec(value.trim());
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00', tz = 'Z'] = m;
  let offsetMin = 0;
  if (tz.toUpperCase() !== 'Z') {
    const t = tz.replace(':', '');
    offsetMin = (t[0] === '-' ? -1 : 1) * (Number(t.slice(1, 3)) * 60 + Number(t.slice(3, 5)));
  }
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offsetMin * 60_000;
  const date = new Date(ms);
  // Reject rollovers (2024-02-31, 25:00) that Date.UTC silently normalises.
  if (Number.isNaN(ms) || Number(mo) < 1 || Number(mo) > 12 || Number(d) > 31 || Number(h) > 23) return undefined;
  if (
    Number(mi) > 59 ||
    Number(s) > 60 ||
    new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d))).getUTCDate() !== Number(d)
  ) {
    return undefined;
  }
  return glanceTime(date);
}

function parseInteger(value: string): number | undefined {
  return /^\s*[+-]?\d{1,15}\s*$/.test(value) ? Number(value) : undefined;
}

function parseSort(params: URLSearchParams): SortSpec[] {
  const keys = params.getAll('sort_key');
  const dirs = params.getAll('sort_dir');
  const sort = params.get('sort');
  const checkKey = (k: string): SortKey => {
    if (!includes(SORT_KEYS, k)) {
      throw badRequest(`Invalid sort key: ${k}. It must be one of the following: ${SORT_KEYS.join(', ')}.`);
    }
    return k;
  };
  const checkDir = (d: string): SortDir => {
    if (d !== 'asc' && d !== 'desc') throw badRequest(`Invalid sort direction: ${d}`);
    return d;
  };
  const specs: SortSpec[] = [];
  let defaultDir: SortDir = 'desc';
  if (sort !== null) {
    if (keys.length > 0 || dirs.length > 0) throw badRequest('Old and new sorting syntax cannot be combined');
    for (const item of sort.split(',')) {
      const [k, d, ...rest] = item.trim().split(':');
      if (rest.length > 0) throw badRequest(`Invalid sort value: ${item}`);
      specs.push({ key: checkKey((k ?? '').trim()), dir: d === undefined ? 'desc' : checkDir(d.trim()) });
    }
  } else {
    const checkedDirs = dirs.map(checkDir);
    if (keys.length === 0) {
      if (checkedDirs.length > 1) throw badRequest('Number of sort dirs does not match the number of sort keys');
      defaultDir = checkedDirs[0] ?? 'desc';
      specs.push({ key: 'created_at', dir: defaultDir });
    } else {
      if (checkedDirs.length > 1 && checkedDirs.length !== keys.length) {
        throw badRequest('Number of sort dirs does not match the number of sort keys');
      }
      if (checkedDirs.length === 1) defaultDir = checkedDirs[0]!;
      keys.forEach((k, i) => specs.push({ key: checkKey(k), dir: checkedDirs[i] ?? defaultDir }));
    }
  }
  const seen = new Set<SortKey>();
  const unique = specs.filter((s) => !seen.has(s.key) && seen.add(s.key));
  for (const tie of ['created_at', 'id'] as const) {
    if (!seen.has(tie)) unique.push({ key: tie, dir: defaultDir });
  }
  return unique;
}

/** The filter for one parameter; undefined when it constrains nothing (`visibility=all`). */
function parseFilter(name: string, value: string): Filter | undefined {
  if (name === 'tag') return { kind: 'tag', value };
  if (name === 'size_min' || name === 'size_max') {
    const n = parseInteger(value);
    if (n === undefined) throw badRequest('Unable to filter on a range with a non-numeric value.');
    return { kind: 'range', column: 'size', op: name === 'size_min' ? '>=' : '<=', value: n };
  }
  if (name === 'visibility') {
    if (value === 'all') return undefined;
    if (!includes(VISIBILITIES, value)) throw badRequest(`Invalid visibility value: ${value}`);
    return { kind: 'in', column: 'visibility', values: [value] };
  }
  if (includes(BOOL_COLUMNS, name)) return { kind: 'in', column: name, values: [parseBool(name, value)] };
  if (includes(TIME_COLUMNS, name)) {
    const colon = value.indexOf(':');
    // `2024-01-01T10:00:00Z` holds colons too: an operator is only a known word before the first colon.
    const head = colon > 0 ? value.slice(0, colon) : '';
    let op: keyof typeof TIME_OPS = 'eq';
    let rest = value;
    if (/^[A-Za-z]+$/.test(head)) {
      if (!(head in TIME_OPS)) throw badRequest('Unable to filter on a unknown operator.');
      op = head as keyof typeof TIME_OPS;
      rest = value.slice(colon + 1);
    }
    const t = normalizeIsoTime(rest);
    if (t === undefined) throw badRequest(`Bad "${name}" query filter format. Use ISO 8601 DateTime notation.`);
    return { kind: 'time', column: name, op: TIME_OPS[op], value: t };
  }
  if (includes(OPERATOR_COLUMNS, name)) {
    if (value.startsWith('in:')) return { kind: 'in', column: name, values: splitInValues(value.slice(3)) };
    if (value.startsWith('eq:')) return { kind: 'in', column: name, values: [value.slice(3)] };
    return { kind: 'in', column: name, values: [value] };
  }
  if (includes(TEXT_COLUMNS, name)) return { kind: 'in', column: name, values: [value] };
  if (includes(INT_COLUMNS, name)) {
    const n = parseInteger(value);
    return n === undefined ? { kind: 'nothing' } : { kind: 'in', column: name, values: [n] };
  }
  if (CORE_ATTRIBUTES.has(name)) return { kind: 'nothing' };
  if (!PROPERTY_KEY.test(name)) throw badRequest(`Invalid filter: ${name}`);
  return { kind: 'property', key: name, value };
}

/** Parses the query string of `GET /v2/images`. Throws GlanceHttpError(400) on anything malformed. */
export function parseListQuery(params: URLSearchParams): ListQuery {
  const counts = new Map<string, number>();
  for (const [k] of params) counts.set(k, (counts.get(k) ?? 0) + 1);
  for (const [k, n] of counts) {
    if (n > 1 && !REPEATABLE.has(k)) throw badRequest(`Query parameter '${k}' may be given only once`);
  }

  let limit = DEFAULT_LIMIT;
  const rawLimit = params.get('limit');
  if (rawLimit !== null) {
    const n = parseInteger(rawLimit);
    if (n === undefined) throw badRequest('limit param must be an integer');
    if (n < 0) throw badRequest('limit param must be positive');
    limit = Math.min(n, MAX_LIMIT);
  }

  const memberStatus = params.get('member_status');
  if (memberStatus !== null && !MEMBER_STATUSES.includes(memberStatus)) {
    throw badRequest(`Invalid status: ${memberStatus}`);
  }

  const filters: Filter[] = [];
  let osHiddenGiven = false;
  for (const [name, value] of params) {
    if (['limit', 'marker', 'sort', 'sort_key', 'sort_dir', 'member_status'].includes(name)) continue;
    if (name === 'os_hidden') osHiddenGiven = true;
    const f = parseFilter(name, value);
    if (f) filters.push(f);
  }
  if (!osHiddenGiven) filters.push({ kind: 'in', column: 'os_hidden', values: [0] });
  // As the reference server: community images are listed only when asked for (visibility=community or all).
  if (!params.has('visibility'))
    filters.push({ kind: 'in', column: 'visibility', values: ['public', 'private', 'shared'] });

  return {
    limit,
    marker: params.get('marker') ?? undefined,
    sort: parseSort(params),
    filters,
    linkParams: [...params].filter(([k]) => k !== 'marker'),
  };
}

type Bound = string | number;

function filterSql(f: Filter, params: Bound[]): string {
  switch (f.kind) {
    case 'in':
      if (f.values.length === 0) return '0';
      params.push(...f.values);
      return f.values.length === 1 ? `${f.column} = ?` : `${f.column} IN (${f.values.map(() => '?').join(', ')})`;
    case 'range':
      params.push(f.value);
      return `${f.column} ${f.op} ?`;
    case 'time':
      params.push(f.value);
      return `${f.column} ${f.op} ?`;
    case 'tag':
      params.push(f.value);
      return `EXISTS (SELECT 1 FROM json_each(images.tags) WHERE json_each.value = ?)`;
    case 'property':
      // The key passed PROPERTY_KEY (no quote, no backslash), so the quoted JSON path is well formed.
      params.push(`$."${f.key}"`, f.value);
      return `json_extract(images.properties, ?) = ?`;
    case 'nothing':
      return '0';
    case 'sql':
      params.push(...f.values);
      return `(${f.sql})`;
  }
}

/** Sort keys the catalog declares NOT NULL (verifier/db.ts). */
const NOT_NULL = new Set<string>([
  'id',
  'status',
  'visibility',
  'protected',
  'os_hidden',
  'min_disk',
  'min_ram',
  'created_at',
  'updated_at',
]);

/**
 * Keyset condition "strictly after `marker` in this order". SQLite orders NULL lowest: first in ASC, last in DESC.
 */
function afterMarkerSql(sort: SortSpec[], marker: ImageRow, params: Bound[]): string {
  const dir = sort[0]?.dir;
  if (sort.every((s) => s.dir === dir && NOT_NULL.has(s.key) && marker[s.key] !== null)) {
    // One direction over columns that are never NULL (the default: created_at, id): a row-value comparison, which
    // SQLite turns into a range on the (created_at, id) index; the OR form below made a deep page scan every row
    // before the marker (10,000 images: the slowest request of the API).
    for (const s of sort) params.push(marker[s.key] as Bound);
    const keys = sort.map((s) => s.key).join(', ');
    return `((${keys}) ${dir === 'asc' ? '>' : '<'} (${sort.map(() => '?').join(', ')}))`;
  }
  const ors: string[] = [];
  for (let i = 0; i < sort.length; i++) {
    const parts: string[] = [];
    for (let j = 0; j < i; j++) {
      const { key } = sort[j]!;
      const v = marker[key];
      if (v === null) parts.push(`${key} IS NULL`);
      else {
        parts.push(`${key} = ?`);
        params.push(v);
      }
    }
    const { key, dir } = sort[i]!;
    const v = marker[key];
    if (dir === 'asc') {
      if (v === null) parts.push(`${key} IS NOT NULL`);
      else {
        parts.push(`${key} > ?`);
        params.push(v);
      }
    } else if (v === null) {
      parts.push('0');
    } else {
      parts.push(`(${key} < ? OR ${key} IS NULL)`);
      params.push(v);
    }
    ors.push(`(${parts.join(' AND ')})`);
  }
  return `(${ors.join(' OR ')})`;
}

/** The SQL of one page (`columns` of each row, in order) and its parameters. Throws 400 for an unknown marker. */
export function pageSql(db: Db, q: ListQuery, columns: string): { sql: string; params: Bound[] } {
  const params: Bound[] = [];
  const where = q.filters.map((f) => filterSql(f, params));
  if (q.marker !== undefined) {
    const marker = imageById(db, q.marker);
    if (!marker) throw badRequest(`No image found with ID ${q.marker}`);
    where.push(afterMarkerSql(q.sort, marker, params));
  }
  const order = q.sort.map((s) => `${s.key} ${s.dir === 'asc' ? 'ASC' : 'DESC'}`).join(', ');
  params.push(q.limit);
  const sql = `SELECT ${columns} FROM images${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${order} LIMIT ?`;
  return { sql, params };
}
