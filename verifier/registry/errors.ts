/**
 * Error responses of the OCI Distribution API, in the spec's shape: `{"errors":[{"code","message","detail"}]}` with
 * `Content-Type: application/json` (no body for HEAD). Codes are the spec's (NAME_UNKNOWN, MANIFEST_UNKNOWN, ...).
 */
import type express from 'express';

export type DistributionCode =
  | 'BLOB_UNKNOWN'
  | 'DENIED'
  | 'DIGEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'PAGINATION_NUMBER_INVALID'
  | 'RANGE_INVALID'
  | 'TAG_INVALID'
  | 'UNAUTHORIZED'
  | 'UNSUPPORTED'
  | 'UNAVAILABLE';

export class RegistryHttpError extends Error {
  readonly status: number;
  readonly code: DistributionCode;
  readonly detail: unknown;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    status: number,
    code: DistributionCode,
    message: string,
    o: { detail?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.name = 'RegistryHttpError';
    this.status = status;
    this.code = code;
    this.detail = o.detail;
    this.headers = o.headers ?? {};
  }
}

export const nameUnknown = (name: string): RegistryHttpError =>
  new RegistryHttpError(404, 'NAME_UNKNOWN', 'repository name not known to registry', { detail: { name } });

export const manifestUnknown = (name: string, reference: string): RegistryHttpError =>
  new RegistryHttpError(404, 'MANIFEST_UNKNOWN', 'manifest unknown', { detail: { name, reference } });

export const blobUnknown = (name: string, digest: string): RegistryHttpError =>
  new RegistryHttpError(404, 'BLOB_UNKNOWN', 'blob unknown to registry', { detail: { name, digest } });

/** Every push method: images enter this registry only through verified bundles. */
export const pushRefused = (method: string): RegistryHttpError =>
  new RegistryHttpError(
    405,
    'DENIED',
    `this registry is read-only (${method} refused): images enter only through verified écluse bundles; add the image outside with "ecluse relay add-image" and import the bundle`,
    { headers: { Allow: 'GET, HEAD' } },
  );

export function sendRegistryError(req: express.Request, res: express.Response, err: RegistryHttpError): void {
  const body = JSON.stringify({
    errors: [{ code: err.code, message: err.message, ...(err.detail === undefined ? {} : { detail: err.detail }) }],
  });
  res.status(err.status);
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** The last handler: spec errors as they are, anything else a 500 in the spec's shape (logged, never shown). */
export function registryErrorHandler(
  err: unknown,
  req: express.Request,
  res: express.Response,
  _next: express.NextFunction,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof RegistryHttpError) {
    sendRegistryError(req, res, err);
    return;
  }
  console.error(`registry api: ${req.method} ${req.path}:`, err);
  sendRegistryError(req, res, new RegistryHttpError(500, 'UNAVAILABLE', 'internal error; see the station journal'));
}
