/**
 * The write side of the images API: create (`POST /v2/images`), `PATCH` (JSON-patch media types), `DELETE`, tags and
 * deactivate/reactivate, in the reference Glance's statuses, headers and error words. Upload is in upload.ts.
 *
 * Images that came through a verified bundle (origin 'bundle') are read-only through the API (403 saying why), unless
 * the site setting `glance_bundle_images` is `writable`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express from 'express';
import { getSetting, glanceTime, type Db, type ImageRow } from '../db.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { retireImage } from '../retirement.js';
import { authOf, requireWriter } from './auth.js';
import { checkPublish, requireOwner, visible } from './access.js';
import { readJson, mediaType } from './body.js';
import {
  badRequest,
  conflict,
  forbidden,
  GlanceHttpError,
  imageNotFound,
  READ_ONLY_MESSAGE,
  sendJson,
  unsupportedMediaType,
} from './errors.js';
import { checkSettable, IGNORED_ON_CREATE, isWritableCore, uniqueTags, validateAttribute } from './image-attrs.js';
import { findImage, isUuid } from './images-read.js';
import { imageRecord, imageTags } from './record.js';
import {
  applyPatch,
  checkLimits,
  MAX_TAGS,
  parsePatch,
  PATCH_MEDIA_TYPES,
  saveModel,
  type Model,
} from './image-model.js';

/** Interoperable import methods announced (`OpenStack-image-import-methods`, `/v2/info/import`). */
export const IMPORT_METHODS: readonly string[] = [];
/** The one embedded store (`OpenStack-image-store-ids`, `/v2/info/stores`). */
export const STORE_ID = 'local';

/** 403 unless the image may be changed through the API (not a bundle's, or the site allows it). */
export function checkWritable(db: Db, row: ImageRow): void {
  if (row.origin === 'bundle' && getSetting(db, 'glance_bundle_images') !== 'writable') {
    throw forbidden(READ_ONLY_MESSAGE);
  }
}

/** The image, or 404 in the words Glance uses for tags and members ("Image X not found."). */
export function findImageOr(db: Db, id: string): ImageRow {
  const row = isUuid(id)
    ? (db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined)
    : undefined;
  if (!row) throw new GlanceHttpError(404, `Image ${id} not found.`);
  return row;
}

function getRow(db: Db, id: string): ImageRow {
  const row = db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined;
  if (!row) throw imageNotFound(id);
  return row;
}

// ----------------------------------------------------------------------------------------------------------------
// Create

function createImage(db: Db, body: unknown, res: express.Response): ImageRow {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw badRequest('Body expected in request.');
  }
  const input = body as Record<string, unknown>;
  const m: Model = {
    core: {
      name: null,
      visibility: 'shared',
      protected: false,
      os_hidden: false,
      container_format: null,
      disk_format: null,
      min_disk: 0,
      min_ram: 0,
      owner: null,
      tags: [],
    },
    extras: {},
  };
  let id: string | undefined;
  // As the reference server: the whole body against the schema first, then read-only and reserved attributes.
  for (const [k, v] of Object.entries(input)) validateAttribute(k, v);
  for (const [k, v] of Object.entries(input)) {
    if (IGNORED_ON_CREATE.has(k)) continue;
    checkSettable(k, 'create');
    if (k === 'id') id = v as string;
    else if (k === 'tags') m.core.tags = uniqueTags(v as string[]);
    else if (isWritableCore(k)) m.core[k] = v;
    else m.extras[k] = v as string;
  }
  checkLimits(m);
  checkPublish(res, m.core.visibility, m.core.owner, true);
  // As Glance with Keystone: the image belongs to the creator's project unless an admin names another owner.
  const project = authOf(res).project;
  if (m.core.owner === null && project) m.core.owner = project;
  id = (id ?? crypto.randomUUID()).toLowerCase();
  const at = glanceTime();
  const row: ImageRow = {
    id,
    name: m.core.name as string | null,
    status: 'queued',
    visibility: m.core.visibility as string,
    protected: m.core.protected ? 1 : 0,
    os_hidden: m.core.os_hidden ? 1 : 0,
    checksum: null,
    os_hash_algo: null,
    os_hash_value: null,
    size: null,
    virtual_size: null,
    container_format: m.core.container_format as string | null,
    disk_format: m.core.disk_format as string | null,
    min_disk: m.core.min_disk as number,
    min_ram: m.core.min_ram as number,
    owner: m.core.owner as string | null,
    created_at: at,
    updated_at: at,
    file: null,
    origin: 'api',
    bundle_id: null,
    artifact_name: null,
    artifact_version: null,
    sha256: null,
    properties: JSON.stringify(m.extras),
    tags: JSON.stringify(m.core.tags),
  };
  const cols = Object.keys(row) as (keyof ImageRow)[];
  try {
    db.prepare(`INSERT INTO images (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(row);
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_CONSTRAINT_PRIMARYKEY')
      throw conflict(`Image ID ${id} already exists!`);
    throw e;
  }
  return row;
}

// ----------------------------------------------------------------------------------------------------------------
// Delete

/** Removes an image's data file (if any) from the store; a missing file is not an error. */
export async function removeImageFile(imagesDir: string, file: string | null): Promise<void> {
  if (!file || path.basename(file) !== file || file === '.' || file === '..') return;
  await fs.promises.rm(path.join(imagesDir, file), { force: true });
}

export function imageWriteRoutes(db: Db, imagesDir: string, baseUrl: (req: express.Request) => string): express.Router {
  const router = express.Router({ caseSensitive: true });

  router.post('/v2/images', async (req, res) => {
    requireWriter(res, 'add_image');
    const body = await readJson(req);
    const row = createImage(db, body, res);
    res.setHeader('Location', `${baseUrl(req).replace(/\/+$/, '')}/v2/images/${row.id}`);
    res.setHeader('OpenStack-image-import-methods', IMPORT_METHODS.join(','));
    res.setHeader('OpenStack-image-store-ids', STORE_ID);
    sendJson(res, 201, imageRecord(row));
  });

  router.patch('/v2/images/:id', async (req, res) => {
    const type = mediaType(req);
    if (!type || !(PATCH_MEDIA_TYPES as readonly string[]).includes(type)) {
      throw unsupportedMediaType(req.get('content-type'), { 'Accept-Patch': PATCH_MEDIA_TYPES.join(', ') });
    }
    const ops = parsePatch(await readJson(req), type === PATCH_MEDIA_TYPES[0]);
    requireWriter(res, 'modify_image');
    const id = req.params.id;
    const row = visible(db, res, findImage(db, id), () => imageNotFound(id));
    requireOwner(res, row, 'modify_image');
    checkWritable(db, row);
    const updated = db
      .transaction(() => {
        const current = getRow(db, row.id);
        const m = applyPatch(current, ops);
        if (m.core.visibility !== current.visibility) checkPublish(res, m.core.visibility, m.core.owner, false);
        saveModel(db, row.id, m, glanceTime());
        return getRow(db, row.id);
      })
      .immediate();
    sendJson(res, 200, imageRecord(updated));
  });

  router.delete('/v2/images/:id', async (req, res) => {
    requireWriter(res, 'delete_image');
    const id = req.params.id;
    const found = isUuid(id)
      ? (db.prepare('SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined)
      : undefined;
    const gone = () => new GlanceHttpError(404, `Failed to find image ${id} to delete`);
    if (!found) throw gone();
    const row = visible(db, res, found, gone);
    requireOwner(res, row, 'delete_image');
    checkWritable(db, row);
    if (row.protected) throw forbidden(`Image ${id} is protected and cannot be deleted.`);
    if (row.origin === 'bundle' && row.artifact_name !== null && row.artifact_version !== null) {
      // A bundle's image (the site allows it): retired as `ecluse image retire` does, audited and in the next receipt.
      const store = { db, siteId: getSetting(db, 'site_id') ?? 'SITE', home: { images: imagesDir } };
      try {
        await retireImage(
          store,
          { name: row.artifact_name, version: row.artifact_version },
          { reason: 'api', only: id },
        );
      } catch (e) {
        if (e instanceof EcluseError && e.code === 'E_IMAGE_IN_USE') throw conflict(e.message);
        throw e;
      }
      res.status(204).end();
      return;
    }
    db.transaction(() => {
      db.prepare('DELETE FROM images WHERE id = ?').run(id);
      db.prepare('DELETE FROM image_members WHERE image_id = ?').run(id);
    })();
    await removeImageFile(imagesDir, row.file);
    res.status(204).end();
  });

  router.put('/v2/images/:id/tags/:tag', (req, res) => {
    requireWriter(res, 'modify_image');
    const id = req.params.id;
    const row = visible(db, res, findImageOr(db, id), () => new GlanceHttpError(404, `Image ${id} not found.`));
    requireOwner(res, row, 'modify_image');
    checkWritable(db, row);
    const tag = req.params.tag;
    validateAttribute('tags', [tag]);
    db.transaction(() => {
      const tags = imageTags(getRow(db, row.id));
      if (tags.includes(tag)) return;
      if (tags.length >= MAX_TAGS) throw new GlanceHttpError(413, `Maximum number of tags exceeded (${MAX_TAGS}).`);
      db.prepare('UPDATE images SET tags = ?, updated_at = ? WHERE id = ?').run(
        JSON.stringify([...tags, tag]),
        glanceTime(),
        row.id,
      );
    }).immediate();
    res.status(204).end();
  });

  router.delete('/v2/images/:id/tags/:tag', (req, res) => {
    requireWriter(res, 'modify_image');
    const id = req.params.id;
    const row = visible(db, res, findImageOr(db, id), () => new GlanceHttpError(404, `Image ${id} not found.`));
    requireOwner(res, row, 'modify_image');
    checkWritable(db, row);
    const tag = req.params.tag;
    db.transaction(() => {
      const tags = imageTags(getRow(db, row.id));
      if (!tags.includes(tag)) throw new GlanceHttpError(404, undefined);
      db.prepare('UPDATE images SET tags = ?, updated_at = ? WHERE id = ?').run(
        JSON.stringify(tags.filter((t) => t !== tag)),
        glanceTime(),
        row.id,
      );
    }).immediate();
    res.status(204).end();
  });

  router.post('/v2/images/:id/actions/:action', (req, res) => {
    const action = req.params.action;
    if (action !== 'deactivate' && action !== 'reactivate') throw new GlanceHttpError(404, undefined);
    // As Glance's default policy: the image's owner (a member of its project) may deactivate it, not only admins.
    requireWriter(res, action);
    const id = req.params.id;
    const row = visible(db, res, findImage(db, id), () => imageNotFound(id));
    requireOwner(res, row, action);
    checkWritable(db, row);
    const [from, to] = action === 'deactivate' ? ['active', 'deactivated'] : ['deactivated', 'active'];
    db.transaction(() => {
      const cur = getRow(db, row.id);
      if (cur.status === to) return;
      if (cur.status !== from) throw forbidden(`Not allowed to ${action} image in status '${cur.status}'`);
      db.prepare('UPDATE images SET status = ?, updated_at = ? WHERE id = ?').run(to, glanceTime(), row.id);
    }).immediate();
    res.status(204).end();
  });

  return router;
}

/** 405 with `Allow` for the other methods on the image resources (as the reference server). */
export function methodNotAllowedRoutes(): express.Router {
  const router = express.Router({ caseSensitive: true });
  const allow =
    (methods: string): express.RequestHandler =>
    (req) => {
      const explanation = `The method ${req.method} is not allowed for this resource.`;
      throw new GlanceHttpError(405, explanation, {
        headers: { Allow: methods },
        rawMessage: `${explanation} <br /><br />\n`,
      });
    };
  router.all('/v2/images', allow('GET, POST'));
  router.all('/v2/images/:id', allow('GET, PATCH, DELETE'));
  router.all('/v2/images/:id/file', allow('GET, PUT'));
  router.all('/v2/images/:id/tags/:tag', allow('PUT, DELETE'));
  router.all('/v2/images/:id/members', allow('GET, POST'));
  router.all('/v2/images/:id/members/:member', allow('GET, PUT, DELETE'));
  router.all('/v2/schemas/image', allow('GET'));
  router.all('/v2/schemas/images', allow('GET'));
  return router;
}
