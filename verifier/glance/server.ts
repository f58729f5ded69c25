/**
 * The embedded Glance v2 API over the import station's catalog (`ecluse serve --listen HOST:PORT`).
 * Reads, writes (create, upload, PATCH, delete, tags, deactivate/reactivate, members), schemas and info endpoints;
 * clients beyond loopback need a token (auth.ts).
 */
import express from 'express';
import { statusRoutes } from '../daemon/status.js';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { hostForUrl, listenError } from '../listen.js';
import type { Db } from '../db.js';
import { errorHandler, notFound } from './errors.js';
import { imageFileRoutes } from './image-file.js';
import { imageReadRoutes } from './images-read.js';
import { imageWriteRoutes, methodNotAllowedRoutes } from './images-write.js';
import { authMiddleware } from './auth.js';
import { keystoneSettings } from './keystone-settings.js';
import { KeystoneTokens } from './keystone-tokens.js';
import { auditWebRouter } from '../web/router.js';
import { memberRoutes } from './members.js';
import { metadefRoutes } from './metadefs-routes.js';
import { taskRoutes } from './tasks.js';
import { loadDistributionMetadefs } from './metadefs-store.js';
import { HashPools, recoverUploads, uploadRoutes } from './upload.js';
import { schemaRoutes } from './schemas.js';
import { unversionedHandler, versionRoutes } from './versions.js';

export interface GlanceAppOptions {
  db: Db;
  /** The folder image files live in (`<home>/store/images`); the catalog's `file` is a name inside it. */
  imagesDir: string;
  /** Private folder for uploads in progress: the home's `staging` (verifier/home.ts). */
  stagingDir: string;
  /** The base URL clients reach this server at, for version hrefs; default from the request's Host. */
  baseUrl?: (req: express.Request) => string;
  /** Hash worker pools for uploads (closed by the caller); default a new set. */
  hashPools?: HashPools;
  /** The site's Keystone validating its users' tokens (keystone-tokens.ts); default none. */
  keystone?: KeystoneTokens;
}

export interface GlanceServerOptions {
  db: Db;
  imagesDir: string;
  stagingDir: string;
  host: string;
  port: number;
}

export interface GlanceServer {
  /** `http://HOST:PORT` (the port actually bound when 0 was asked). */
  url: string;
  close(): Promise<void>;
}

export function defaultBaseUrl(req: express.Request): string {
  const host = req.get('host') ?? `${hostForUrl(req.socket.localAddress ?? '127.0.0.1')}:${req.socket.localPort}`;
  return `${req.protocol}://${host}`;
}

export function createGlanceApp(opts: GlanceAppOptions): express.Express {
  const baseUrl = opts.baseUrl ?? defaultBaseUrl;
  const stagingDir = opts.stagingDir;
  const pools = opts.hashPools ?? new HashPools();
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);
  app.set('case sensitive routing', true);

  app.use((_req, res, next) => {
    res.setHeader('x-openstack-request-id', `req-${randomUUID()}`);
    next();
  });
  app.use('/audit', auditWebRouter({ db: opts.db })); // issue 6: the audit web view (its own login)
  app.use(authMiddleware(opts.db, opts.keystone));
  // As the reference server: `/v2/images/` is not the collection (an empty image id is not found).
  app.use('/v2/images/', (req, _res, next) => {
    if (req.originalUrl.split('?')[0] === '/v2/images/') throw notFound();
    next();
  });
  app.use(statusRoutes(opts.imagesDir)); // the import daemon's status (issue 4): GET /status.json
  app.use(versionRoutes(baseUrl));
  app.use(schemaRoutes());
  app.use(imageReadRoutes(opts.db));
  app.use(imageFileRoutes(opts.db, opts.imagesDir));
  app.use(uploadRoutes(opts.db, { images: opts.imagesDir, staging: stagingDir }, pools));
  app.use(imageWriteRoutes(opts.db, opts.imagesDir, baseUrl));
  app.use(memberRoutes(opts.db));
  app.use(metadefRoutes(opts.db));
  app.use(taskRoutes(opts.db));
  app.use(methodNotAllowedRoutes());
  app.use(unversionedHandler(baseUrl));
  app.use(() => {
    throw notFound();
  });
  app.use(errorHandler);
  return app;
}

export async function startGlanceServer(opts: GlanceServerOptions): Promise<GlanceServer> {
  const pools = new HashPools();
  const keystone = keystoneSettings(opts.db);
  loadDistributionMetadefs(opts.db);
  recoverUploads(opts.db, opts.stagingDir);
  const app = createGlanceApp({
    db: opts.db,
    imagesDir: opts.imagesDir,
    stagingDir: opts.stagingDir,
    hashPools: pools,
    ...(keystone ? { keystone: new KeystoneTokens(keystone) } : {}),
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException) => reject(listenError(e, opts.host, opts.port));
    server.once('error', failed);
    server.listen(opts.port, opts.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${hostForUrl(opts.host)}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => {
          void pools.close().then(() => (err ? reject(err) : resolve()), reject);
        });
        server.closeAllConnections();
      }),
  };
}
