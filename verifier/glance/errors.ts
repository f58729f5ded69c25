/**
 * Error responses in the reference Glance's shapes (webob's `WSGIHTTPException` as Glance raises it):
 *   - `text/html` for `Accept: * /*`, or whenever HTML ranks at least as high as JSON,
 *   - `{"message": ..., "code": "404 Not Found", "title": "Not Found"}` when only JSON is acceptable,
 *   - `text/plain` when neither is, and when the request has no Accept at all (glanceclient, curl -H 'Accept:').
 * The message keeps webob's `<br /><br />` and trailing newlines: glanceclient and openstacksdk show it as is.
 */
import type express from 'express';

export const STATUS_TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  410: 'Gone',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  416: 'Request Range Not Satisfiable',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** webob's default explanations, used when Glance raises with a `detail` only. */
const DEFAULT_EXPLANATIONS: Readonly<Record<number, string>> = {
  400: 'The server could not comply with the request since it is either malformed or otherwise incorrect.',
  401: 'This server could not verify that you are authorized to access the document you requested. Either you supplied the wrong credentials (e.g., bad password), or your browser does not understand how to supply the credentials required.',
  403: 'Access was denied to this resource.',
  409: 'There was a conflict when trying to complete your request.',
  404: 'The resource could not be found.',
  416: 'The Range requested is not available.',
  500: 'The server has either erred or is incapable of performing the requested operation.',
  503: 'The server is currently unavailable. Please try again at a later time.',
};

/** Why an image that came through a verified bundle (origin 'bundle') refuses writes through the API. */
export const READ_ONLY_MESSAGE =
  "This image came through a verified écluse bundle and is read-only through the API: its data and properties are what the bundle's signers approved (to remove it, retire it at the import station: ecluse image retire NAME@VERSION; to allow changes through the API, set the site setting glance_bundle_images=writable).";

/** An HTTP error answered in Glance's shapes. `explanation` is the main line; `detail` an optional second one. */
export class GlanceHttpError extends Error {
  readonly status: number;
  readonly explanation: string;
  readonly detail: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The JSON `message` verbatim, for the few errors Glance renders outside webob's template (415). */
  readonly rawMessage: string | undefined;

  constructor(
    status: number,
    explanation: string | undefined,
    options: { detail?: string; headers?: Record<string, string>; rawMessage?: string } = {},
  ) {
    const expl = explanation ?? DEFAULT_EXPLANATIONS[status] ?? '';
    super(options.detail ? `${expl} ${options.detail}` : expl);
    this.name = 'GlanceHttpError';
    this.status = status;
    this.explanation = expl;
    this.detail = options.detail ?? '';
    this.headers = options.headers ?? {};
    this.rawMessage = options.rawMessage;
  }
}

export const badRequest = (message: string): GlanceHttpError => new GlanceHttpError(400, message);
export const notFound = (message?: string): GlanceHttpError => new GlanceHttpError(404, message);
export const imageNotFound = (id: string): GlanceHttpError => new GlanceHttpError(404, `No image found with ID ${id}`);
export const forbidden = (message: string): GlanceHttpError => new GlanceHttpError(403, message);
export const conflict = (message: string): GlanceHttpError => new GlanceHttpError(409, message);

/** 415 as Glance's request deserializer words it (outside webob's template: one newline before the break). */
export function unsupportedMediaType(
  contentType: string | undefined,
  headers: Record<string, string> = {},
): GlanceHttpError {
  const explanation = `The request media type ${contentType ?? 'None'} is not supported by this server.`;
  return new GlanceHttpError(415, explanation, { headers, rawMessage: `${explanation}\n<br /><br />\n` });
}

/**
 * JSON as Python's `json.dumps` writes it with its defaults (what Glance sends): `", "` and `": "` separators and
 * every non-ASCII character escaped, so bodies are byte-identical to the reference server's.
 */
export function pyJson(v: unknown): string {
  // JSON.stringify with an indent already writes `": "`; its line breaks then become Python's `", "` after a comma and
  // nothing elsewhere (a raw line break never occurs inside a JSON string, so this cannot touch a value). Two native
  // passes: a page of 25 images (~40 KB) in 0.6 ms where the character loop this replaced took 2.1 (a loaded machine).
  const indented = JSON.stringify(v, null, 1) as string | undefined;
  if (indented === undefined) return 'null';
  const flat = indented.replace(LINE_BREAK, (_m, at: number) => (indented.charCodeAt(at - 1) === 0x2c ? ' ' : ''));
  // As Python's json.dumps (ensure_ascii): inside strings every character from U+007F as \uXXXX (outside strings
  // there are none).
  return HAS_NON_ASCII.test(flat)
    ? flat.replace(NON_ASCII, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
    : flat;
}

const LINE_BREAK = /\n */g;
const HAS_NON_ASCII = /[\u007f-\uffff]/;
const NON_ASCII = /[\u007f-\uffff]/g;

/** Sends `body` as `application/json` (no charset, as Glance does) with an exact Content-Length. */
export function sendJson(res: express.Response, status: number, body: unknown): void {
  sendJsonText(res, status, pyJson(body));
}

/** Sends JSON text already written as `pyJson` writes it (a list page joined from its images' texts). */
export function sendJsonText(res: express.Response, status: number, text: string): void {
  sendJsonBytes(res, status, Buffer.from(text, 'utf8'));
}

/** Sends JSON already encoded (a body kept from an earlier request: verifier/glance/catalog-reads.ts). */
export function sendJsonBytes(res: express.Response, status: number, data: Buffer): void {
  res.status(status);
  res.setHeader('Content-Type', 'application/json');
  res.setHeader('Content-Length', String(data.length));
  res.end(res.req.method === 'HEAD' ? undefined : data);
}

type ErrorFormat = 'html' | 'json' | 'plain';

interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

function parseAccept(header: string): MediaRange[] {
  const ranges: MediaRange[] = [];
  for (const part of header.split(',')) {
    const [media, ...params] = part.trim().split(';');
    const m = /^([A-Za-z0-9!#$%&'*+.^_`|~-]+)\/([A-Za-z0-9!#$%&'*+.^_`|~-]+)$/.exec((media ?? '').trim());
    if (!m) continue;
    let q = 1;
    for (const p of params) {
      const qm = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/i.exec(p);
      if (qm) q = Math.min(1, Number(qm[1]));
    }
    ranges.push({ type: m[1]!.toLowerCase(), subtype: m[2]!.toLowerCase(), q });
  }
  return ranges;
}

/** The q-value the Accept ranges give `offer` (most specific matching range wins), or 0. */
function qualityOf(ranges: MediaRange[], offer: string): number {
  const [type, subtype] = offer.split('/') as [string, string];
  let best = -1;
  let q = 0;
  for (const r of ranges) {
    let specificity = -1;
    if (r.type === type && r.subtype === subtype) specificity = 2;
    else if (r.type === type && r.subtype === '*') specificity = 1;
    else if (r.type === '*' && r.subtype === '*') specificity = 0;
    if (specificity > best) {
      best = specificity;
      q = r.q;
    }
  }
  return q;
}

/**
 * webob's choice, checked against the reference server: no (or an empty) Accept → text/plain; otherwise the better
 * of text/html and application/json (HTML on ties, and for an Accept that does not parse), else text/plain.
 */
export function errorFormat(accept: string | undefined): ErrorFormat {
  if (accept === undefined || accept.trim() === '') return 'plain';
  const ranges = parseAccept(accept);
  if (ranges.length === 0) return 'html';
  const html = qualityOf(ranges, 'text/html');
  const json = qualityOf(ranges, 'application/json');
  if (html <= 0 && json <= 0) return 'plain';
  return json > html ? 'json' : 'html';
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;');

/** The body, rendered exactly as webob does. */
export function renderError(err: GlanceHttpError, format: ErrorFormat): { contentType: string; body: string } {
  const title = STATUS_TITLES[err.status] ?? 'Error';
  const status = `${err.status} ${title}`;
  const raw = err.rawMessage ?? `${err.explanation}<br /><br />\n${err.detail}\n\n`;
  switch (format) {
    case 'json':
      return { contentType: 'application/json', body: pyJson({ message: raw, code: status, title }) };
    case 'plain': {
      const stripped = raw.replace(/\n/g, ' ').replace(/<br\s*\/?>/gi, '\n');
      return { contentType: 'text/plain; charset=UTF-8', body: `${status}\n\n${stripped}` };
    }
    case 'html': {
      const body = `${escapeHtml(err.explanation)}<br /><br />\n${escapeHtml(err.detail)}\n\n`;
      return {
        contentType: 'text/html; charset=UTF-8',
        body:
          `<html>\n <head>\n  <title>${status}</title>\n </head>\n <body>\n` +
          `  <h1>${status}</h1>\n  ${body}\n </body>\n</html>`,
      };
    }
  }
}

export function sendError(req: express.Request, res: express.Response, err: GlanceHttpError): void {
  const { contentType, body } = renderError(err, errorFormat(req.get('accept')));
  const data = Buffer.from(body, 'utf8');
  res.status(err.status);
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', String(data.length));
  res.end(req.method === 'HEAD' ? undefined : data);
}

/** Last handler of the app: GlanceHttpErrors in their shapes, anything else as a 500 without internals. */
export function errorHandler(
  err: unknown,
  req: express.Request,
  res: express.Response,
  _next: express.NextFunction,
): void {
  if (res.headersSent) {
    // Mid-stream failure (e.g. a read error while sending a file): nothing sane to send, cut the connection.
    res.destroy(err instanceof Error ? err : undefined);
    return;
  }
  if (err instanceof GlanceHttpError) {
    sendError(req, res, err);
    return;
  }
  // Errors raised by express itself (e.g. a malformed URL) carry a 4xx status.
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    sendError(req, res, new GlanceHttpError(status === 404 ? 404 : 400, undefined));
    return;
  }
  console.error('glance api: internal error:', err);
  sendError(req, res, new GlanceHttpError(500, undefined));
}
