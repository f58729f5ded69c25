/**
 * `GET /v2/images` (list: filters, sort, pagination with `first`/`next`) and `GET /v2/images/{id}` (show).
 */
import express from 'express';
import type { Db } from '../db.js';
import { imageById, type ImageRow } from '../image-catalog.js';
import { imageNotFound, pyJson, sendJsonBytes } from './errors.js';
import { parseListQuery } from './list-query.js';
import { CatalogReads } from './catalog-reads.js';
import { imageRecord } from './record.js';
import { authOf, type AuthContext } from './auth.js';
import { listScope, seesAll, visible } from './access.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(id: string): boolean {
  return UUID.test(id);
}

/** The query string of a request, parsed once, repeats and order kept (never `req.query`). */
export function requestParams(req: express.Request): URLSearchParams {
  const url = req.originalUrl;
  const q = url.indexOf('?');
  return new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
}

/** The catalog row for an API id; 404 in Glance's words for a missing or non-UUID id. */
export function findImage(db: Db, id: string): ImageRow {
  const row = isUuid(id) ? imageById(db, id) : undefined;
  if (!row) throw imageNotFound(id);
  return row;
}

/**
 * The `first`/`next` link. Repeated parameters (`tag=a&tag=b`) are all kept: the reference server keeps only the
 * last one, so following its `next` changes the filter (a deliberate difference, test/conformance/differences.ts).
 */
function link(path: string, params: [string, string][]): string {
  return params.length ? `${path}?${new URLSearchParams(params).toString()}` : path;
}

/**
 * Who a read is for, as far as what it shows depends on it (access.ts `seesAll`, `canSee`, `listScope`): the whole
 * catalog, or one project's view. A body kept for one is never sent to another.
 */
export function readScope(ctx: AuthContext): string {
  return seesAll(ctx) ? '*' : `project:${ctx.project ?? ''}`;
}

export function imageReadRoutes(db: Db): express.Router {
  const router = express.Router({ caseSensitive: true });
  const reads = new CatalogReads(db);

  // The body is `pyJson({ images, first, schema, next? })`, joined from each image's cached text (verifier/glance/
  // catalog-reads.ts): the same bytes.
  router.get('/v2/images', (req, res) => {
    const body = reads.body(`${readScope(authOf(res))} ${req.originalUrl}`, () => {
      const params = requestParams(req);
      const query = parseListQuery(params);
      const scope = listScope(authOf(res), params);
      if (scope) query.filters.push(scope);
      const { ids, images } = reads.select(query);
      const last = ids.at(-1);
      const next =
        last && ids.length === query.limit ? link('/v2/images', [...query.linkParams, ['marker', last]]) : null;
      return (
        `{"images": [${images.join(', ')}], "first": ${pyJson(link('/v2/images', query.linkParams))}, ` +
        `"schema": ${pyJson('/v2/schemas/images')}${next === null ? '' : `, "next": ${pyJson(next)}`}}`
      );
    });
    sendJsonBytes(res, 200, body);
  });

  router.get('/v2/images/:id', (req, res) => {
    const id = req.params.id;
    const body = reads.body(`${readScope(authOf(res))} ${req.originalUrl.split('?')[0] ?? ''}`, () =>
      pyJson(imageRecord(visible(db, res, findImage(db, id), () => imageNotFound(id)))),
    );
    sendJsonBytes(res, 200, body);
  });

  return router;
}
