/** Request bodies of the write API: read with a size cap, parsed as JSON with Glance's error for malformed input. */
import type express from 'express';
import { badRequest, GlanceHttpError } from './errors.js';

/** Glance's `max_request_body_size` default. */
export const MAX_JSON_BODY = 114_688;

export async function readBody(req: express.Request, limit = MAX_JSON_BODY): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > limit) throw new GlanceHttpError(413, 'Request body too large', {});
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

export async function readJson(req: express.Request): Promise<unknown> {
  const raw = await readBody(req);
  if (raw.length === 0) return undefined;
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw badRequest('Malformed JSON in request body.');
  }
}

/** The media type of the request, lower-cased, without parameters (undefined when there is none). */
export function mediaType(req: express.Request): string | undefined {
  const ct = req.get('content-type');
  if (ct === undefined || ct.trim() === '') return undefined;
  return ct.split(';')[0]!.trim().toLowerCase();
}
