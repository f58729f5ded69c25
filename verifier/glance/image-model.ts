/**
 * The mutable part of an image as the write API edits it (name, visibility, formats, tags, extra properties...), and
 * JSON-patch (both Glance media types) applied to it, in the reference Glance's words and limits.
 */
import type { Db } from '../db.js';
import { saveImageEdits, type ImageRow } from '../image-catalog.js';
import { badRequest, forbidden, GlanceHttpError } from './errors.js';
import {
  checkSettable,
  isWritableCore,
  UNREMOVABLE,
  uniqueTags,
  validateAttribute,
  type WritableCore,
} from './image-attrs.js';
import { extraProperties, imageTags } from './record.js';

export const PATCH_MEDIA_TYPES = [
  'application/openstack-images-v2.0-json-patch',
  'application/openstack-images-v2.1-json-patch',
] as const;

export const MAX_TAGS = 128;
export const MAX_PROPERTIES = 128;

/** The mutable part of an image, as PATCH edits it. */
export interface Model {
  core: Record<WritableCore, unknown>;
  extras: Record<string, string>;
}

function modelOf(row: ImageRow): Model {
  return {
    core: {
      name: row.name,
      visibility: row.visibility,
      protected: row.protected !== 0,
      os_hidden: row.os_hidden !== 0,
      container_format: row.container_format,
      disk_format: row.disk_format,
      min_disk: row.min_disk,
      min_ram: row.min_ram,
      owner: row.owner,
      tags: imageTags(row),
    },
    extras: extraProperties(row),
  };
}

export function saveModel(db: Db, id: string, m: Model, at: string): void {
  saveImageEdits(
    db,
    id,
    { ...m.core, protected: Boolean(m.core.protected), os_hidden: Boolean(m.core.os_hidden), properties: m.extras },
    at,
  );
}

/** 413 when an image would hold more tags or extra properties than Glance allows. */
export function checkLimits(m: Model): void {
  if ((m.core.tags as string[]).length > MAX_TAGS) {
    throw new GlanceHttpError(413, `Maximum number of tags exceeded (${MAX_TAGS}).`);
  }
  if (Object.keys(m.extras).length > MAX_PROPERTIES) {
    throw new GlanceHttpError(413, `Maximum number of image properties exceeded (${MAX_PROPERTIES}).`);
  }
}

interface PatchOp {
  op: 'add' | 'remove' | 'replace';
  key: string;
  value?: unknown;
}

function decodePointer(pointer: unknown): string {
  if (typeof pointer !== 'string') throw badRequest("Unable to find '/' in JSON pointer.");
  if (!pointer.startsWith('/')) throw badRequest(`Pointer \`${pointer}\` does not start with "/".`);
  const parts = pointer.slice(1).split('/');
  if (parts.length !== 1 || /~(?![01])/.test(parts[0]!)) {
    throw badRequest(`Invalid JSON pointer for this resource: '${pointer}'`);
  }
  return parts[0]!.replace(/~1/g, '/').replace(/~0/g, '~');
}

export function parsePatch(body: unknown, v20: boolean): PatchOp[] {
  if (!Array.isArray(body)) throw badRequest('Request body must be a JSON array of operation objects.');
  return body.map((raw: unknown): PatchOp => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw badRequest('Operations must be JSON objects.');
    }
    const o = raw as Record<string, unknown>;
    let op: string;
    let pointer: unknown;
    if (v20) {
      const ops = ['add', 'remove', 'replace'].filter((k) => k in o);
      if (ops.length !== 1)
        throw badRequest('Operation objects must contain exactly one member named "add", "remove", or "replace".');
      op = ops[0]!;
      pointer = o[op];
    } else {
      if (!('op' in o)) throw badRequest('Operation objects must contain a member named "op".');
      op = String(o.op);
      if (!['add', 'remove', 'replace'].includes(op)) {
        throw badRequest(`Invalid operation: \`${op}\`. It must be one of the following: add, remove, replace.`);
      }
      if (!('path' in o)) throw badRequest(`Operation "${op}" requires a member named "path".`);
      pointer = o.path;
    }
    const key = decodePointer(pointer);
    if (op !== 'remove' && !('value' in o)) throw badRequest(`Operation "${op}" requires a member named "value".`);
    return { op: op as PatchOp['op'], key, ...(op !== 'remove' ? { value: o.value } : {}) };
  });
}

export function applyPatch(row: ImageRow, ops: PatchOp[]): Model {
  const m = modelOf(row);
  for (const { op, key, value } of ops) {
    checkSettable(key);
    if (key === 'id') throw forbidden(`Attribute 'id' is read-only.`);
    if (op === 'remove') {
      if (UNREMOVABLE.has(key)) {
        throw new GlanceHttpError(403, undefined, { detail: `Property ${key} may not be removed.` });
      }
      if (!(key in m.extras)) throw new GlanceHttpError(409, undefined, { detail: `Property ${key} does not exist.` });
      delete m.extras[key];
      continue;
    }
    validateAttribute(key, value);
    if ((key === 'disk_format' || key === 'container_format') && row.status !== 'queued') {
      if (value !== m.core[key]) throw forbidden(`Attribute ${key} can be only replaced for a queued image.`);
    }
    if (isWritableCore(key)) {
      m.core[key] = key === 'tags' ? uniqueTags(value as string[]) : value;
    } else {
      if (op === 'replace' && !(key in m.extras)) {
        throw new GlanceHttpError(409, undefined, { detail: `Property ${key} does not exist.` });
      }
      m.extras[key] = value as string;
    }
  }
  checkLimits(m);
  return m;
}
