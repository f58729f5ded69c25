/**
 * The write side of the images API. In this version images arrive only through verified bundles: every write
 * answers 403 in Glance's error shape. The routes are the ones Glance has, so the write side can replace them
 * one by one (create, PATCH, DELETE, upload, tags, deactivate/reactivate, interoperable import).
 */
import express from 'express';
import { GlanceHttpError, READ_ONLY_MESSAGE } from './errors.js';

const readOnly: express.RequestHandler = () => {
  throw new GlanceHttpError(403, READ_ONLY_MESSAGE);
};

export function imageWriteRoutes(): express.Router {
  const router = express.Router({ caseSensitive: true });
  router.post('/v2/images', readOnly);
  router.patch('/v2/images/:id', readOnly);
  router.delete('/v2/images/:id', readOnly);
  router.put('/v2/images/:id/file', readOnly);
  router.put('/v2/images/:id/stage', readOnly);
  router.post('/v2/images/:id/import', readOnly);
  router.put('/v2/images/:id/tags/:tag', readOnly);
  router.delete('/v2/images/:id/tags/:tag', readOnly);
  router.post('/v2/images/:id/actions/:action', readOnly);
  return router;
}

/** 405 with `Allow` for the other methods on the image resources (as the reference server). */
export function methodNotAllowedRoutes(): express.Router {
  const router = express.Router({ caseSensitive: true });
  const allow =
    (methods: string): express.RequestHandler =>
    (req) => {
      throw new GlanceHttpError(405, `The method ${req.method} is not allowed for this resource.`, {
        headers: { Allow: methods },
      });
    };
  router.all('/v2/images', allow('GET, POST'));
  router.all('/v2/images/:id', allow('GET, PATCH, DELETE'));
  router.all('/v2/images/:id/file', allow('GET, PUT'));
  router.all('/v2/schemas/image', allow('GET'));
  router.all('/v2/schemas/images', allow('GET'));
  return router;
}
