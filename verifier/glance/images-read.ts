/**
 * `GET /v2/images` (list: filters, sort, pagination with `first`/`next`) and `GET /v2/images/{id}` (show).
 */
import express from 'express';
import type { Db, ImageRow } from '../db.js';
import { imageNotFound, sendJson } from './errors.js';
import { parseListQuery, selectPage } from './list-query.js';
import { imageRecord } from './record.js';
import { authOf } from './auth.js';
import { statement } from './statements.js';
import { listScope, visible } from './access.js';

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
  const row = isUuid(id)
    ? (statement(db, 'SELECT * FROM images WHERE id = ?').get(id) as ImageRow | undefined)
    : undefined;
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

export function imageReadRoutes(db: Db): express.Router {
  const router = express.Router({ caseSensitive: true });

  router.get('/v2/images', (req, res) => {
    const params = requestParams(req);
    const query = parseListQuery(params);
    const scope = listScope(authOf(res), params);
    if (scope) query.filters.push(scope);
    const rows = selectPage(db, query);
    const body: { images: ReturnType<typeof imageRecord>[]; first: string; schema: string; next?: string } = {
      images: rows.map(imageRecord),
      first: link('/v2/images', query.linkParams),
      schema: '/v2/schemas/images',
    };
    const last = rows.at(-1);
    if (last && rows.length === query.limit) body.next = link('/v2/images', [...query.linkParams, ['marker', last.id]]);
    sendJson(res, 200, body);
  });

  router.get('/v2/images/:id', (req, res) => {
    const id = req.params.id;
    sendJson(res, 200, imageRecord(visible(db, res, findImage(db, id), () => imageNotFound(id))));
  });

  return router;
}
