/**
 * `PUT /v2/images/{id}/file`: the image data, streamed to a private file under the store's staging folder while
 * md5, sha256 and sha512 are computed (sneakernet/digests.ts), fsynced, then renamed into the store. The image goes
 * queued → saving → active; an image not queued is a 409; a failed or cut upload puts it back to queued and leaves
 * nothing behind. An image deleted while its data was arriving keeps nothing either.
 */
import { virtualSizeFromHead } from '../disk-header.js';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import express from 'express';
import { glanceTime, type Db } from '../db.js';
import {
  abandonAllUploads,
  abandonUpload,
  claimForUpload,
  completeUpload,
  imageDiskFormat,
  imageStatus,
} from '../image-catalog.js';
import { HashPool, type Digests } from '../../sneakernet/digests.js';
import { requireWriter } from './auth.js';
import { requireOwner, visible } from './access.js';
import { mediaType } from './body.js';
import { conflict, GlanceHttpError, imageNotFound, unsupportedMediaType } from './errors.js';
import { checkWritable } from './images-write.js';
import { findImage } from './images-read.js';

/** Glance's `image_size_cap` default (1 TiB). */
export const IMAGE_SIZE_CAP = 1024 ** 4;

/** Hash pools (two worker threads each) handed to one upload at a time, kept for reuse. */
export class HashPools {
  private readonly idle: HashPool[] = [];
  private readonly all = new Set<HashPool>();
  constructor(private readonly keepIdle = 2) {}

  async hash<T>(f: (pool: HashPool) => Promise<T>): Promise<T> {
    const pool = this.idle.pop() ?? new HashPool();
    this.all.add(pool);
    let healthy = false;
    try {
      const r = await f(pool);
      healthy = true;
      return r;
    } finally {
      if (healthy && this.idle.length < this.keepIdle) this.idle.push(pool);
      else {
        this.all.delete(pool);
        await pool.close();
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.all].map((p) => p.close()));
    this.all.clear();
    this.idle.length = 0;
  }
}

/** Virtual size as Glance 25 reports it: raw → its size; qcow2 → the header's; other formats → null. */
export function virtualSize(diskFormat: string | null, size: number, head: Buffer): number | null {
  return virtualSizeFromHead(diskFormat, size, head); // one rule with bundle imports (verifier/disk-header.ts)
}

export interface Received {
  file: string;
  size: number;
  digests: Digests;
  head: Buffer;
}

/** Streams `source` into a new private file in `stagingDir`, hashing it; fsyncs. Removes the file on failure. */
export async function receiveToStaging(
  pools: HashPools,
  source: AsyncIterable<Buffer>,
  stagingDir: string,
  cap = IMAGE_SIZE_CAP,
): Promise<Received> {
  await fs.promises.mkdir(stagingDir, { recursive: true, mode: 0o700 });
  const file = path.join(stagingDir, `upload-${crypto.randomUUID()}`);
  const fh = await fs.promises.open(file, 'wx', 0o600);
  try {
    return await pools.hash(async (pool) => {
      const hasher = pool.begin();
      let head = Buffer.alloc(0);
      let size = 0;
      try {
        for await (const chunk of source) {
          size += chunk.length;
          if (size > cap) throw new GlanceHttpError(413, `Image exceeds the storage quota: the limit is ${cap} bytes.`);
          if (head.length < 512) head = Buffer.concat([head, chunk.subarray(0, 512 - head.length)]);
          const hashed = hasher.update(chunk);
          let off = 0;
          while (off < chunk.length) off += (await fh.write(chunk, off)).bytesWritten;
          await hashed;
        }
      } catch (e) {
        // End the hasher's stream anyway, so the pool is clean for the next upload.
        await hasher.digest().catch(() => undefined);
        throw e;
      }
      const digests = await hasher.digest();
      await fh.sync();
      return { file, size, digests, head };
    });
  } catch (e) {
    await fs.promises.rm(file, { force: true });
    throw e;
  } finally {
    await fh.close();
  }
}

/**
 * After a crash: uploads that were in progress leave their image `saving` and a private `upload-*` file in staging.
 * Put the images back to queued (the client uploads again) and remove the files. Run before serving.
 */
export function recoverUploads(db: Db, stagingDir: string): number {
  const n = abandonAllUploads(db, glanceTime());
  if (fs.existsSync(stagingDir)) {
    for (const f of fs.readdirSync(stagingDir)) {
      if (f.startsWith('upload-')) fs.rmSync(path.join(stagingDir, f), { force: true });
    }
  }
  return n;
}

export function uploadRoutes(db: Db, dirs: { images: string; staging: string }, pools: HashPools): express.Router {
  const router = express.Router({ caseSensitive: true });

  router.put('/v2/images/:id/file', async (req, res) => {
    const type = mediaType(req);
    if (type !== 'application/octet-stream') throw unsupportedMediaType(req.get('content-type'));
    requireWriter(res, 'upload_image');
    const id = req.params.id;
    const row = visible(db, res, findImage(db, id), () => imageNotFound(id));
    requireOwner(res, row, 'upload_image');
    checkWritable(db, row);
    if (!claimForUpload(db, row.id, glanceTime())) {
      throw conflict(`Image status transition from ${imageStatus(db, row.id) ?? row.status} to saving is not allowed`);
    }
    let received: Received | undefined;
    try {
      received = await receiveToStaging(pools, req as AsyncIterable<Buffer>, dirs.staging);
      const target = path.join(dirs.images, row.id);
      await fs.promises.rename(received.file, target);
      const r = received;
      const done = completeUpload(
        db,
        row.id,
        {
          size: r.size,
          virtualSize: virtualSize(imageDiskFormat(db, row.id), r.size, r.head),
          md5: r.digests.md5,
          sha512: r.digests.sha512,
          sha256: r.digests.sha256,
          file: row.id,
        },
        glanceTime(),
      );
      if (!done) {
        // Deleted (or changed) while the data was arriving: keep nothing.
        await fs.promises.rm(target, { force: true });
        throw new GlanceHttpError(
          410,
          `Image ${row.id} could not be found after upload. The image may have been deleted during the upload.`,
        );
      }
    } catch (e) {
      abandonUpload(db, row.id, glanceTime());
      if (received) await fs.promises.rm(received.file, { force: true });
      if (req.destroyed || req.readableAborted) {
        // The client went away: nobody is left to answer.
        if (!res.headersSent) res.destroy();
        return;
      }
      throw e;
    }
    res.status(204).end();
  });

  return router;
}
