/**
 * Tasks (`GET /v2/tasks`, `GET /v2/images/{id}/tasks`): Glance records its asynchronous work (interoperable import)
 * as tasks. écluse does none: an image's data arrives by PUT /file or through a verified bundle, synchronously, so
 * the lists are truthfully empty (what openstacksdk's `image.tasks()` and Horizon read).
 */
import express from 'express';
import type { Db } from '../db.js';
import { visible } from './access.js';
import { requireAdmin } from './auth.js';
import { imageNotFound, sendJson } from './errors.js';
import { findImage } from './images-read.js';

export function taskRoutes(db: Db): express.Router {
  const router = express.Router({ caseSensitive: true });
  router.get('/v2/tasks', (_req, res) => {
    requireAdmin(res, 'tasks_api_access');
    sendJson(res, 200, { tasks: [], first: '/v2/tasks', schema: '/v2/schemas/tasks' });
  });
  router.get('/v2/images/:id/tasks', (req, res) => {
    const id = req.params.id;
    visible(db, res, findImage(db, id), () => imageNotFound(id));
    sendJson(res, 200, { tasks: [] });
  });
  return router;
}
