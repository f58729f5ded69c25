/**
 * The read side of the OCI Distribution API over the registry store:
 *   GET/HEAD /v2/<name>/manifests/<tag|digest>  the stored bytes as signed, with the media type they were signed with
 *   GET/HEAD /v2/<name>/blobs/<digest>          streamed from disk, one `Range` → 206
 *   GET      /v2/<name>/tags/list               with `n`/`last` pagination and a `Link` to the next page
 *   GET      /v2/_catalog                       the same, over repositories
 * A manifest is never converted: a client whose `Accept` excludes its media type gets MANIFEST_UNKNOWN saying so.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import type express from 'express';
import type { Db } from '../db.js';
import { GlanceHttpError } from '../glance/errors.js';
import { parseRange, type ByteRange } from '../glance/image-file.js';
import { sendFileRange } from '../glance/send-file-range.js';
import { blobFile } from './blob-store.js';
import { blobUnknown, manifestUnknown, nameUnknown, RegistryHttpError } from './errors.js';
import {
  blobOfRepository,
  imageByTag,
  manifestOfRepository,
  repositoryExists,
  repositoryPage,
  tagPage,
  type ImageBlob,
} from './images.js';

const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const SHA256 = /^sha256:[a-f0-9]{64}$/;
const ANY_DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
/** The largest page of `_catalog` and `tags/list`, and the page size when the client gives no `n`. */
export const MAX_PAGE = 1000;

export type RegistryRoute =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'tags'; name: string }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'unknown' };

function checkName(name: string): string {
  if (name.length > 255 || !REPOSITORY.test(name)) {
    throw new RegistryHttpError(400, 'NAME_INVALID', 'invalid repository name', { detail: { name } });
  }
  return name;
}

/** The route a path names (names checked against the spec's grammar: NAME_INVALID, TAG_INVALID, DIGEST_INVALID). */
export function routeOf(pathname: string): RegistryRoute {
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'base' };
  if (pathname === '/v2/_catalog') return { kind: 'catalog' };
  const tags = /^\/v2\/(.+)\/tags\/list$/.exec(pathname);
  if (tags?.[1]) return { kind: 'tags', name: checkName(tags[1]) };
  const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(pathname);
  if (!m?.[1] || !m[2] || !m[3]) return { kind: 'unknown' };
  const name = checkName(m[1]);
  const reference = m[3];
  if (m[2] === 'blobs') {
    if (!ANY_DIGEST.test(reference)) {
      throw new RegistryHttpError(400, 'DIGEST_INVALID', 'invalid digest', { detail: { digest: reference } });
    }
    return { kind: 'blob', name, digest: reference };
  }
  if (!TAG.test(reference) && !ANY_DIGEST.test(reference)) {
    throw new RegistryHttpError(400, 'TAG_INVALID', 'invalid tag or digest', { detail: { reference } });
  }
  return { kind: 'manifest', name, reference };
}

/** The media types the `Accept` headers list (Node joins several with commas; parameters dropped); null: any. */
function accepted(req: express.Request): string[] | null {
  const all = (req.get('accept') ?? '')
    .split(',')
    .map((v) => (v.split(';')[0] ?? '').trim().toLowerCase())
    .filter((v) => v !== '');
  if (all.length === 0 || all.includes('*/*')) return null;
  return all;
}

/** The manifest a reference names in a repository, with the media type it was signed with. */
function findManifest(db: Db, name: string, reference: string): ImageBlob {
  if (ANY_DIGEST.test(reference) && reference.includes(':')) {
    const found = SHA256.test(reference) ? manifestOfRepository(db, name, reference) : undefined;
    if (!found) {
      if (!repositoryExists(db, name)) throw nameUnknown(name);
      throw manifestUnknown(name, reference);
    }
    return found;
  }
  const image = imageByTag(db, name, reference);
  if (!image) {
    if (!repositoryExists(db, name)) throw nameUnknown(name);
    throw manifestUnknown(name, reference);
  }
  return { digest: image.digest, size: -1, mediaType: image.mediaType };
}

/** Reads a manifest's bytes from the store, checking them against their digest (they are small: ≤ 4 MiB). */
async function manifestBytes(blobsDir: string, digest: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await fs.promises.readFile(blobFile(blobsDir, digest));
  } catch (e) {
    console.error(`registry api: manifest ${digest} is recorded but cannot be read:`, e);
    throw new RegistryHttpError(
      500,
      'UNAVAILABLE',
      'the manifest is recorded but missing from the store; run "ecluse store check"',
    );
  }
  const got = `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
  if (got !== digest) {
    console.error(`registry api: manifest ${digest} in the store hashes to ${got}`);
    throw new RegistryHttpError(
      500,
      'UNAVAILABLE',
      'the stored manifest does not match its digest; run "ecluse store check"',
    );
  }
  return bytes;
}

export async function serveManifest(
  db: Db,
  blobsDir: string,
  req: express.Request,
  res: express.Response,
  name: string,
  reference: string,
): Promise<void> {
  const found = findManifest(db, name, reference);
  const types = accepted(req);
  if (types && !types.includes(found.mediaType)) {
    throw new RegistryHttpError(
      404,
      'MANIFEST_UNKNOWN',
      `the manifest is ${found.mediaType}, which the client does not accept; this registry serves the vendor's signed bytes and never converts them`,
      { detail: { name, reference, mediaType: found.mediaType } },
    );
  }
  const bytes = await manifestBytes(blobsDir, found.digest);
  res.status(200);
  res.setHeader('Content-Type', found.mediaType);
  res.setHeader('Docker-Content-Digest', found.digest);
  res.setHeader('ETag', `"${found.digest}"`);
  res.setHeader('Content-Length', String(bytes.length));
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

function blobRange(header: string | undefined, size: number): ByteRange | undefined {
  try {
    return parseRange(header, size);
  } catch (e) {
    if (!(e instanceof GlanceHttpError)) throw e;
    throw new RegistryHttpError(
      416,
      'RANGE_INVALID',
      `invalid Range header for a ${size}-byte blob: one range of bytes is served`,
      {
        headers: { 'Content-Range': `bytes */${size}` },
      },
    );
  }
}

export async function serveBlob(
  db: Db,
  blobsDir: string,
  req: express.Request,
  res: express.Response,
  name: string,
  digest: string,
): Promise<void> {
  const blob = SHA256.test(digest) ? blobOfRepository(db, name, digest) : undefined;
  if (!blob) {
    if (!repositoryExists(db, name)) throw nameUnknown(name);
    throw blobUnknown(name, digest);
  }
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(blobFile(blobsDir, digest), 'r');
  } catch (e) {
    console.error(`registry api: blob ${digest} is recorded but cannot be opened:`, e);
    throw new RegistryHttpError(
      500,
      'UNAVAILABLE',
      'the blob is recorded but missing from the store; run "ecluse store check"',
    );
  }
  try {
    const { size } = await fh.stat();
    if (size !== blob.size) {
      console.error(`registry api: blob ${digest} is ${size} bytes, the catalog says ${blob.size}`);
      throw new RegistryHttpError(
        500,
        'UNAVAILABLE',
        'the stored blob does not match the catalog; run "ecluse store check"',
      );
    }
    const range = blobRange(req.get('range'), size);
    const start = range?.start ?? 0;
    const end = range?.end ?? size - 1;
    const length = size === 0 ? 0 : end - start + 1;
    res.status(range ? 206 : 200);
    res.setHeader('Content-Type', 'application/octet-stream');
    res.setHeader('Docker-Content-Digest', digest);
    res.setHeader('ETag', `"${digest}"`);
    res.setHeader('Accept-Ranges', 'bytes');
    if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
    res.setHeader('Content-Length', String(length));
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    // Reused buffers, as the Glance image downloads (glance/send-file-range.ts); the handle is closed below.
    try {
      const outcome = await sendFileRange(fh, start, end, res);
      if (outcome.kind === 'short') {
        console.error(`registry api: blob ${digest}: the data ended at byte ${outcome.at}, before ${end + 1}`);
      }
    } catch (e) {
      console.error(`registry api: blob ${digest}: download failed:`, e);
    }
  } finally {
    await fh.close();
  }
}

/** `n` and `last` of a paginated listing (PAGINATION_NUMBER_INVALID for an `n` that is not a whole number). */
function page(req: express.Request): { n: number; last: string | undefined } {
  const params = new URL(req.originalUrl, 'http://registry').searchParams;
  const raw = params.get('n');
  let n = MAX_PAGE;
  if (raw !== null) {
    if (!/^[0-9]{1,9}$/.test(raw)) {
      throw new RegistryHttpError(400, 'PAGINATION_NUMBER_INVALID', 'invalid number of results requested', {
        detail: { n: raw },
      });
    }
    n = Math.min(Number(raw), MAX_PAGE);
  }
  return { n, last: params.get('last') ?? undefined };
}

function sendPage(
  res: express.Response,
  path: string,
  n: number,
  items: string[],
  body: (items: string[]) => unknown,
): void {
  const more = items.length > n;
  const shown = items.slice(0, n);
  const last = shown[shown.length - 1];
  if (more && last !== undefined) {
    res.setHeader('Link', `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`);
  }
  res.status(200).json(body(shown));
}

export function serveCatalog(db: Db, req: express.Request, res: express.Response): void {
  const { n, last } = page(req);
  const items = n === 0 ? [] : repositoryPage(db, last, n + 1);
  sendPage(res, '/v2/_catalog', n, items, (repositories) => ({ repositories }));
}

export function serveTags(db: Db, req: express.Request, res: express.Response, name: string): void {
  if (!repositoryExists(db, name)) throw nameUnknown(name);
  const { n, last } = page(req);
  const items = n === 0 ? [] : tagPage(db, name, last, n + 1);
  sendPage(res, `/v2/${name}/tags/list`, n, items, (tags) => ({ name, tags }));
}
