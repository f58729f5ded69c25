/**
 * The audit web view, mounted by `ecluse serve` under /audit on the same express app as the Glance API. Read-only
 * (GET/HEAD; POST only to log in and out), server-rendered, no script at all, helmet headers with a strict CSP.
 * It also signs the hourly checkpoint while the server runs.
 */
import express from 'express';
import helmet from 'helmet';
import type { Db } from '../db.js';
import { checkpointIfStale, homeOf } from '../audit/checkpoint.js';
import { loadAuditPublicKey } from '../audit/key.js';
import { loginRoutes, requireUser, userOf } from './auth.js';
import { downloadHandler } from './downloads.js';
import { esc, qs } from './html.js';
import { keyAt, mediumSessions } from './media-sessions.js';
import { artifactPage, artifactsPage, bundlePage, mediaListPage, mediaPage } from './pages/details.js';
import { containerImagesPage } from './pages/container-images.js';
import { logPage } from './pages/log.js';
import { timelinePage } from './pages/timeline.js';
import { STYLE } from './style.js';

export interface AuditWebOptions {
  db: Db;
  /** How often to look whether an hourly checkpoint is due (ms); 0 turns the timer off. Default 5 minutes. */
  checkpointEveryMs?: number;
}

function notFoundPage(what: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Not found</title><link rel="stylesheet" href="/audit/style.css"></head><body><main><h1>Not found</h1><p>${esc(what)}</p><p><a href="/audit/">Timeline</a></p></main></body></html>`;
}

export function auditWebRouter(o: AuditWebOptions): express.Router {
  const { db } = o;
  const home = homeOf(db);
  const every = o.checkpointEveryMs ?? 300_000;
  if (home && every > 0) {
    const timer = setInterval(() => {
      try {
        checkpointIfStale(db, home);
      } catch (e) {
        process.stderr.write(`warning: hourly audit checkpoint failed: ${(e as Error).message}\n`);
      }
    }, every);
    timer.unref();
  }
  const r = express.Router({ caseSensitive: true, strict: false });
  r.use(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          scriptSrc: ["'none'"],
        },
      },
      strictTransportSecurity: false,
      crossOriginEmbedderPolicy: true,
    }),
  );
  r.use((_req, res, next) => {
    res.set('Cache-Control', 'no-store');
    next();
  });
  r.get('/style.css', (_req, res) => {
    res.set('Cache-Control', 'max-age=3600').type('text/css').send(STYLE);
  });
  r.use(loginRoutes(db));
  r.use(requireUser(db));
  r.use((req, res, next) => {
    if (req.method === 'GET' || req.method === 'HEAD') return next();
    res.status(405).set('Allow', 'GET, HEAD').type('text/plain').send('the audit view is read-only\n');
  });
  const params = (req: express.Request) => new URL(req.originalUrl, 'http://x').searchParams;
  const send = (res: express.Response, page: string | null, what: string) =>
    page === null ? res.status(404).type('html').send(notFoundPage(what)) : res.type('html').send(page);

  r.get('/', (req, res) => {
    res.type('html').send(timelinePage(db, home, userOf(res), params(req)));
  });
  r.get('/log', (_req, res) => {
    res.type('html').send(logPage(db, home, userOf(res)));
  });
  r.get('/bundle/:id', (req, res) =>
    send(res, bundlePage(db, userOf(res), String(req.params.id)), `no bundle ${req.params.id}`),
  );
  r.get('/artifacts', (_req, res) => res.type('html').send(artifactsPage(db, userOf(res))));
  r.get('/container-images', (_req, res) => res.type('html').send(containerImagesPage(db, userOf(res))));
  r.get('/artifact/:name', (req, res) =>
    send(res, artifactPage(db, userOf(res), String(req.params.name)), `no artifact ${req.params.name}`),
  );
  r.get('/media', (_req, res) => res.type('html').send(mediaListPage(db, userOf(res))));
  r.get('/media/view', (req, res) => {
    const p = params(req);
    const mount = p.get('mount');
    const seq = Number(p.get('seq'));
    if (mount !== null && Number.isSafeInteger(seq)) {
      // An event's link names where it happened: which medium was there then is its page.
      res.redirect(302, `/audit/media/view${qs({ id: keyAt(mediumSessions(db), mount, seq) })}`);
      return;
    }
    const id = p.get('id') ?? '';
    send(res, mediaPage(db, userOf(res), id), `no media ${id}`);
  });
  r.get('/events.jsonl', downloadHandler(db, 'jsonl'));
  r.get('/events.csv', downloadHandler(db, 'csv'));
  r.get('/key.pem', (_req, res) => {
    const k = home ? loadAuditPublicKey(home) : null;
    if (!k) return res.status(404).type('text/plain').send('no audit key yet\n');
    res.type('application/x-pem-file').send(k.export({ type: 'spki', format: 'pem' }).toString());
  });
  r.use((req, res) => {
    res
      .status(404)
      .type('html')
      .send(notFoundPage(`nothing at ${req.originalUrl}`));
  });
  r.use((err: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    process.stderr.write(`audit web: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    if (!res.headersSent) res.status(500).type('text/plain').send('E_INTERNAL: the audit view failed\n');
    else res.end();
  });
  return r;
}
