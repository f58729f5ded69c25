/**
 * `GET /v2/images/{id}/file` (and HEAD): the image data, streamed from `<imagesDir>/<file>` with
 * `Content-Type: application/octet-stream`, `Content-Length` and `Content-MD5` (hex md5, when the record has a
 * checksum). One `Range: bytes=a-b | a- | -n` → 206 with `Content-Range`; several ranges → 400; unsatisfiable or
 * malformed → 416; an image without data → 204.
 */
import express from 'express';
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../db.js';
import { badRequest, GlanceHttpError, imageNotFound } from './errors.js';
import { findImage } from './images-read.js';
import { authOf } from './auth.js';
import { visible } from './access.js';
import { sendFileRange } from './send-file-range.js';

export interface ByteRange {
  start: number;
  /** inclusive */
  end: number;
}

// The reference server sends no Content-Range with its 416 (checked by test/conformance).
const rangeNotSatisfiable = (_size: number, detail: string): GlanceHttpError =>
  new GlanceHttpError(416, undefined, { detail });

/**
 * The byte range a `Range` header asks of a `size`-byte file, or undefined for the whole file (no header).
 * Throws 400 for several ranges (as Glance), 416 for a malformed or unsatisfiable one.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | undefined {
  if (header === undefined) return undefined;
  const eq = header.indexOf('=');
  const unit = eq < 0 ? '' : header.slice(0, eq).trim().toLowerCase();
  const spec = header.slice(eq + 1);
  if (unit !== 'bytes') throw rangeNotSatisfiable(size, 'Invalid Range header.');
  if (spec.includes(',')) {
    throw badRequest(
      'Requests with multiple ranges are not supported in Glance. You may make multiple single-range requests instead.',
    );
  }
  const m = /^\s*(\d{0,15})\s*-\s*(\d{0,15})\s*$/.exec(spec);
  if (!m || (m[1] === '' && m[2] === '')) throw rangeNotSatisfiable(size, 'Invalid Range header.');
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw rangeNotSatisfiable(size, 'Invalid Range header.');
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    if (m[2] !== '' && Number(m[2]) < start) throw rangeNotSatisfiable(size, 'Invalid Range header.');
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || size === 0) {
    throw rangeNotSatisfiable(
      size,
      `Invalid start position in Range header. Start position MUST be in the inclusive range [0, ${size - 1}].`,
    );
  }
  return { start, end };
}

/** `<imagesDir>/<file>`, refusing anything but a plain file name (the catalog is trusted, but not blindly). */
function dataPath(imagesDir: string, file: string, id: string): string {
  if (file === '' || file === '.' || file === '..' || path.basename(file) !== file || file.includes('\\')) {
    console.error(`glance api: image ${id} has an invalid file name in the catalog`);
    throw new GlanceHttpError(500, undefined);
  }
  return path.join(imagesDir, file);
}

export function imageFileRoutes(db: Db, imagesDir: string): express.Router {
  const router = express.Router({ caseSensitive: true });

  router.get('/v2/images/:id/file', async (req, res) => {
    const id = req.params.id;
    const row = visible(db, res, findImage(db, id), () => imageNotFound(id));
    // As the reference server: only admins (and no-auth loopback clients, who are admins) download deactivated data.
    if (row.status === 'deactivated' && authOf(res).role !== 'admin') {
      throw new GlanceHttpError(403, 'The requested image has been deactivated. Image data download is forbidden.');
    }
    if (row.file === null) {
      res.status(204).end();
      return;
    }
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(dataPath(imagesDir, row.file, row.id), 'r');
    } catch (e) {
      if (e instanceof GlanceHttpError) throw e;
      console.error(`glance api: image ${row.id}: cannot open its data:`, e);
      throw new GlanceHttpError(500, undefined, { detail: 'The image data is not available.' });
    }
    try {
      const { size } = await fh.stat();
      if (row.size !== null && row.size !== size) {
        console.error(`glance api: image ${row.id}: data is ${size} bytes, the catalog says ${row.size}`);
        throw new GlanceHttpError(500, undefined, { detail: 'The image data does not match the catalog.' });
      }
      const range = parseRange(req.get('range'), size);
      const start = range?.start ?? 0;
      const end = range?.end ?? size - 1;
      const length = end - start + 1;
      res.status(range ? 206 : 200);
      res.setHeader('Content-Type', 'application/octet-stream');
      if (range) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
      if (row.checksum) res.setHeader('Content-MD5', row.checksum);
      res.setHeader('Content-Length', String(length));
      if (req.method === 'HEAD' || length === 0) {
        res.end();
        return;
      }
      // Reused 1 MiB buffers (send-file-range.ts): a fresh buffer per read cost more CPU in garbage collection than
      // the copy itself. The file handle stays ours: closed below once the last byte was read.
      try {
        const outcome = await sendFileRange(fh, start, end, res);
        if (outcome.kind === 'short') {
          console.error(`glance api: image ${row.id}: the data ended at byte ${outcome.at}, before ${end + 1}`);
        }
      } catch (e) {
        console.error(`glance api: image ${row.id}: download failed:`, e);
      }
    } finally {
      await fh.close();
    }
  });

  return router;
}
