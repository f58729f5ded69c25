/**
 * The Glance v2 image record built from a catalog row: the core attributes, `tags` (never null), the `self`/`file`/
 * `schema` links, and the extra properties as flat top-level strings (never a nested `properties` object).
 * Key order follows the reference server: extra properties first, then the core attributes.
 */
import { CORE_ATTRIBUTES } from '../../sneakernet/glance-vocabulary.js';
import type { ImageRow } from '../image-catalog.js';

/** One image as the API shows it. */
export type GlanceImage = Record<string, string | number | boolean | null | string[]>;

/** The extra properties of a row, as a flat object of strings (non-string scalars stringified, others dropped). */
export function extraProperties(row: Pick<ImageRow, 'properties'>): Record<string, string> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(row.properties);
  } catch {
    return {};
  }
  const out: Record<string, string> = {};
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return out;
  for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
    if (CORE_ATTRIBUTES.has(k)) continue;
    if (typeof v === 'string') out[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
  }
  return out;
}

export function imageTags(row: Pick<ImageRow, 'tags'>): string[] {
  try {
    const parsed: unknown = JSON.parse(row.tags);
    return Array.isArray(parsed) ? parsed.filter((t): t is string => typeof t === 'string') : [];
  } catch {
    return [];
  }
}

export function imageRecord(row: ImageRow): GlanceImage {
  const self = `/v2/images/${row.id}`;
  return {
    ...extraProperties(row),
    name: row.name,
    disk_format: row.disk_format,
    container_format: row.container_format,
    visibility: row.visibility,
    size: row.size,
    virtual_size: row.virtual_size,
    status: row.status,
    checksum: row.checksum,
    protected: row.protected !== 0,
    min_ram: row.min_ram,
    min_disk: row.min_disk,
    owner: row.owner,
    os_hidden: row.os_hidden !== 0,
    os_hash_algo: row.os_hash_algo,
    os_hash_value: row.os_hash_value,
    id: row.id,
    created_at: row.created_at,
    updated_at: row.updated_at,
    tags: imageTags(row),
    self,
    file: `${self}/file`,
    schema: '/v2/schemas/image',
  };
}
