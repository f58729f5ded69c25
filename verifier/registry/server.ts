/**
 * The import station's container registry (`ecluse serve --registry-listen HOST:PORT`): the OCI Distribution API,
 * read-only, on a listener of its own (Glance's `/v2/images` and the registry's `/v2/<name>` never share one). Images
 * are served under their source repository path without the vendor's registry host: `vendor.example:5000/acme/app:1.4`
 * outside is `HOST:PORT/acme/app:1.4` here. Every push method is refused: images enter only through bundles.
 */
import express from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Db } from '../db.js';
import { keystoneSettings } from '../glance/keystone-settings.js';
import { KeystoneTokens } from '../glance/keystone-tokens.js';
import { hostForUrl, listenError } from '../listen.js';
import { pullAccess } from './access.js';
import { pushRefused, RegistryHttpError, registryErrorHandler } from './errors.js';
import { routeOf, serveBlob, serveCatalog, serveManifest, serveTags } from './pulls.js';

export interface RegistryAppOptions {
  db: Db;
  /** `<home>/registry/blobs/sha256` (verifier/home.ts). */
  blobsDir: string;
  /** The site's Keystone validating its users' tokens; default none. */
  keystone?: KeystoneTokens;
}

const PUSH_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

export function createRegistryApp(opts: RegistryAppOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', false);
  app.set('case sensitive routing', true);
  app.use((req, res, next) => {
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    if (PUSH_METHODS.has(req.method)) throw pushRefused(req.method);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new RegistryHttpError(
        405,
        'UNSUPPORTED',
        `${req.method} is not supported: this registry serves pulls (GET, HEAD)`,
        {
          headers: { Allow: 'GET, HEAD' },
        },
      );
    }
    next();
  });
  app.use(pullAccess(opts.db, opts.keystone));
  app.use(async (req, res) => {
    if (req.path.includes('%')) {
      throw new RegistryHttpError(400, 'NAME_INVALID', 'percent-encoded paths are not part of the distribution API');
    }
    const route = routeOf(req.path);
    switch (route.kind) {
      case 'base':
        res.status(200).json({});
        return;
      case 'catalog':
        serveCatalog(opts.db, req, res);
        return;
      case 'tags':
        serveTags(opts.db, req, res, route.name);
        return;
      case 'manifest':
        await serveManifest(opts.db, opts.blobsDir, req, res, route.name, route.reference);
        return;
      case 'blob':
        await serveBlob(opts.db, opts.blobsDir, req, res, route.name, route.digest);
        return;
      case 'unknown':
        throw new RegistryHttpError(404, 'UNSUPPORTED', `${req.path} is not an endpoint of this registry`);
    }
  });
  app.use(registryErrorHandler);
  return app;
}

export interface RegistryServerOptions {
  db: Db;
  blobsDir: string;
  host: string;
  port: number;
}

export interface RegistryServer {
  /** `http://HOST:PORT` (the port actually bound when 0 was asked). */
  url: string;
  /** `HOST:PORT`, as image references inside name this registry. */
  address: string;
  close(): Promise<void>;
}

export async function startRegistryServer(opts: RegistryServerOptions): Promise<RegistryServer> {
  const keystone = keystoneSettings(opts.db);
  const app = createRegistryApp({
    db: opts.db,
    blobsDir: opts.blobsDir,
    ...(keystone ? { keystone: new KeystoneTokens(keystone) } : {}),
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException) => reject(listenError(e, opts.host, opts.port, '--registry-listen'));
    server.once('error', failed);
    server.listen(opts.port, opts.host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const address = `${hostForUrl(opts.host)}:${port}`;
  return {
    url: `http://${address}`,
    address,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
