/**
 * Version discovery: `GET /versions` → 200 and every unversioned path → 300, both with the versions document whose
 * hrefs are built from the request (keystoneauth and glanceclient read it; glanceclient needs an id starting `v2`).
 * `GET /v2` redirects to `/v2/` as the reference server does.
 */
import express from 'express';
import { sendJson } from './errors.js';

/** The ids the reference Glance (25.1.0) announces, newest first (it has no v2.14). */
export const VERSION_IDS = [
  'v2.15',
  'v2.13',
  'v2.12',
  'v2.11',
  'v2.10',
  'v2.9',
  'v2.8',
  'v2.7',
  'v2.6',
  'v2.5',
  'v2.4',
  'v2.3',
  'v2.2',
  'v2.1',
  'v2.0',
] as const;

export interface VersionsDocument {
  versions: { id: string; status: 'CURRENT' | 'SUPPORTED'; links: { rel: 'self'; href: string }[] }[];
}

export function versionsDocument(base: string): VersionsDocument {
  const href = `${base.replace(/\/+$/, '')}/v2/`;
  return {
    versions: VERSION_IDS.map((id, i) => ({
      id,
      status: i === 0 ? 'CURRENT' : 'SUPPORTED',
      links: [{ rel: 'self', href }],
    })),
  };
}

/** `GET /versions` and `/v2` (mount before the v2 routes). */
export function versionRoutes(baseUrl: (req: express.Request) => string): express.Router {
  const router = express.Router({ caseSensitive: true, strict: true });
  router.get('/versions', (req, res) => sendJson(res, 200, versionsDocument(baseUrl(req))));
  router.all('/v2', (req, res) => {
    res.status(302);
    res.setHeader('Content-Type', 'text/plain; charset=utf8');
    res.setHeader('Location', `${baseUrl(req).replace(/\/+$/, '')}/v2/`);
    res.setHeader('Content-Length', '0');
    res.end();
  });
  return router;
}

/** Every path outside `/v2/` (mount after the v2 routes): 300 Multiple Choices with the versions document. */
export function unversionedHandler(baseUrl: (req: express.Request) => string): express.RequestHandler {
  return (req, res, next) => {
    if (req.path.startsWith('/v2/')) {
      next();
      return;
    }
    sendJson(res, 300, versionsDocument(baseUrl(req)));
  };
}
