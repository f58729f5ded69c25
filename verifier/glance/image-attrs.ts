/**
 * What a client may set on an image (create and PATCH), checked as the reference Glance checks it: read-only and
 * reserved attributes → 403, values that do not match the image schema → 400 with jsonschema's first line.
 */
import { badRequest, forbidden, GlanceHttpError } from './errors.js';
import { IMAGE_SCHEMA } from './schemas.js';

/** Attributes the server computes: setting one is a 403 "Attribute 'x' is read-only.". */
export const READ_ONLY_ATTRIBUTES: ReadonlySet<string> = new Set([
  'status',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'size',
  'virtual_size',
  'created_at',
  'updated_at',
  'self',
  'file',
  'schema',
  'direct_url',
  'stores',
]);

/** Attributes nobody may set: 403 "Attribute 'x' is reserved.". */
export const RESERVED_ATTRIBUTES: ReadonlySet<string> = new Set([
  'deleted',
  'deleted_at',
  'location',
  'locations',
  'properties',
]);

/** Core attributes a client may write, with the catalog column each lands in. */
export const WRITABLE_CORE = [
  'name',
  'visibility',
  'protected',
  'os_hidden',
  'container_format',
  'disk_format',
  'min_disk',
  'min_ram',
  'owner',
  'tags',
] as const;
export type WritableCore = (typeof WRITABLE_CORE)[number];
export const isWritableCore = (k: string): k is WritableCore => (WRITABLE_CORE as readonly string[]).includes(k);

/** Core attributes PATCH may never remove. */
export const UNREMOVABLE: ReadonlySet<string> = new Set([...WRITABLE_CORE, 'id']);

/** Python's repr of a JSON value, as jsonschema prints it in Glance's 400 messages. */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (typeof v === 'number') return String(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  }
  // Parsed JSON holds nothing else; a bigint is the one other value that prints as a number.
  return typeof v === 'bigint' ? v.toString() : 'None';
}

const schemaError = (what: string, where: string, value: unknown): Error =>
  badRequest(
    `Provided object does not match schema 'image': ${what}\n\nFailed validating in schema${where}\n\nOn instance${where.replace(/^\['properties'\]|^\['additionalProperties'\]/, '')}:\n    ${pyRepr(value)}`,
  );

type PropSchema = {
  type?: string | readonly string[];
  enum?: readonly (string | null)[];
  maxLength?: number;
  pattern?: string;
};

const typeOk = (t: string, v: unknown): boolean =>
  (t === 'null' && v === null) ||
  (t === 'string' && typeof v === 'string') ||
  (t === 'integer' && typeof v === 'number' && Number.isInteger(v)) ||
  (t === 'boolean' && typeof v === 'boolean') ||
  (t === 'array' && Array.isArray(v));

/** Checks one attribute value against the image schema (core) or `additionalProperties: {type: string}` (extra). */
export function validateAttribute(key: string, value: unknown): void {
  const props = IMAGE_SCHEMA.properties as unknown as Record<string, PropSchema>;
  const s = props[key];
  if (!s) {
    if (typeof value !== 'string') {
      throw schemaError(`${pyRepr(value)} is not of type 'string'`, `['${key}']`, value);
    }
    if (key.length > 255) throw badRequest(`Property name ${key} is longer than 255 characters.`);
    return;
  }
  const where = `['${key}']`;
  const types = s.type === undefined ? [] : typeof s.type === 'string' ? [s.type] : [...s.type];
  if (types.length > 0 && !types.some((t) => typeOk(t, value))) {
    const want = types.map((t) => `'${t}'`).join(', ');
    throw schemaError(`${pyRepr(value)} is not of type ${want}`, where, value);
  }
  if (s.enum && !s.enum.includes(value as string | null)) {
    throw schemaError(`${pyRepr(value)} is not one of ${pyRepr(s.enum)}`, where, value);
  }
  if (typeof value === 'string' && s.maxLength !== undefined && value.length > s.maxLength) {
    throw schemaError(`${pyRepr(value)} is too long`, where, value);
  }
  if (typeof value === 'string' && s.pattern !== undefined && !new RegExp(s.pattern).test(value)) {
    throw schemaError(`${pyRepr(value)} does not match ${pyRepr(s.pattern)}`, where, value);
  }
  if ((key === 'min_ram' || key === 'min_disk') && (value as number) < 0) {
    throw badRequest(`Cannot be a negative value`);
  }
  if ((key === 'min_ram' || key === 'min_disk') && (value as number) > 2 ** 31 - 1) {
    throw badRequest(`'${key}' value out of range`);
  }
  if (key === 'tags') {
    for (const t of value as unknown[]) {
      if (typeof t !== 'string') throw schemaError(`${pyRepr(t)} is not of type 'string'`, "['tags']", t);
      if (t.length > 255) throw schemaError(`${pyRepr(t)} is too long`, "['tags']", t);
    }
  }
}

/** 403 for read-only and reserved attributes, as Glance words them (create puts the reserved one in the detail). */
export function checkSettable(key: string, on: 'create' | 'patch' = 'patch'): void {
  if (READ_ONLY_ATTRIBUTES.has(key)) throw forbidden(`Attribute '${key}' is read-only.`);
  if (RESERVED_ATTRIBUTES.has(key)) {
    if (on === 'create') throw new GlanceHttpError(403, undefined, { detail: `Attribute '${key}' is reserved.` });
    throw forbidden(`Attribute '${key}' is reserved.`);
  }
}

/** Attributes the reference server silently ignores on create (it computes them on upload). */
export const IGNORED_ON_CREATE: ReadonlySet<string> = new Set(['os_hash_algo', 'os_hash_value']);

/** Tags without duplicates, in first-seen order. */
export const uniqueTags = (tags: string[]): string[] => [...new Set(tags)];
