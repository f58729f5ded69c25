/**
 * Reading from a vendor mirror: an HTTP(S) URL or a local folder. Small files (checksum files, signatures, bundles)
 * are read whole within a bound; artifacts are streamed into a partial file in the blob store, hashed (sha256 and
 * sha512) on the way, and resumed with an HTTP `Range` request when a partial file is already there (the bytes
 * already on disk are hashed again first: nothing is trusted until the whole file matches the vendor's digest).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EcluseError } from '../../sneakernet/errors.js';

export const isHttp = (url: string) => /^https?:\/\//i.test(url);

/** `base` joined with a file name: a URL relative to a folder URL, or a path in a local folder. */
export function joinSource(base: string, name: string): string {
  if (name.includes('/') || name.includes('\\') || name === '..' || name === '.') {
    throw new EcluseError('E_FEED', `refusing the published name "${name}" (it is not a plain file name)`);
  }
  if (isHttp(base)) return new URL(encodeURIComponent(name), base.endsWith('/') ? base : `${base}/`).toString();
  return path.join(base, name);
}

function feedError(source: string, why: string): EcluseError {
  return new EcluseError('E_FEED', `cannot read ${source}: ${why}`, { check: 'feed' });
}

/** Reads a whole (small) file from the mirror, at most `max` bytes; null when it does not exist (404 / ENOENT). */
export async function readSmall(source: string, max: number): Promise<Buffer | null> {
  if (isHttp(source)) {
    let res: Response;
    try {
      res = await fetch(source, { redirect: 'follow', signal: AbortSignal.timeout(60_000) });
    } catch (e) {
      throw feedError(source, (e as Error).message);
    }
    if (res.status === 404 || res.status === 410) return null;
    if (!res.ok) throw feedError(source, `HTTP ${res.status}`);
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > max) throw feedError(source, `it is ${declared} bytes, more than the ${max} allowed`);
    const chunks: Buffer[] = [];
    let n = 0;
    if (res.body) {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        n += chunk.length;
        if (n > max) throw feedError(source, `it is more than the ${max} bytes allowed`);
        chunks.push(Buffer.from(chunk));
      }
    }
    return Buffer.concat(chunks);
  }
  try {
    const st = await fs.promises.stat(source);
    if (!st.isFile()) throw feedError(source, 'not a regular file');
    if (st.size > max) throw feedError(source, `it is ${st.size} bytes, more than the ${max} allowed`);
    return await fs.promises.readFile(source);
  } catch (e) {
    if (e instanceof EcluseError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw feedError(source, (e as Error).message);
  }
}

/** Names listed in a mirror folder: a local folder's files, or the links of an HTTP index page (autoindex). */
export async function listSource(base: string): Promise<string[]> {
  if (!isHttp(base)) {
    try {
      return (await fs.promises.readdir(base, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
    } catch (e) {
      throw feedError(base, (e as Error).message);
    }
  }
  const page = await readSmall(base.endsWith('/') ? base : `${base}/`, 4 * 1024 * 1024);
  if (!page) throw feedError(base, 'HTTP 404');
  const names = new Set<string>();
  for (const m of page.toString('utf8').matchAll(/href\s*=\s*"([^"?#]+)"/gi)) {
    const href = m[1] ?? '';
    if (href.includes('/') || href.startsWith('.')) continue;
    try {
      names.add(decodeURIComponent(href));
    } catch {
      /* not a name */
    }
  }
  return [...names];
}

export interface Downloaded {
  file: string;
  size: number;
  sha256: string;
  sha512: string;
  /** Bytes that were already on disk from an earlier, interrupted fetch. */
  resumedFrom: number;
}

async function hashExisting(file: string, h256: ReturnType<typeof createHash>, h512: ReturnType<typeof createHash>) {
  let n = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    h256.update(chunk as Buffer);
    h512.update(chunk as Buffer);
    n += (chunk as Buffer).length;
  }
  return n;
}

/**
 * Streams `source` into `partial` (kept across runs), resuming where an earlier run stopped. On return the file is
 * complete and fsynced; the caller checks the digests and renames or removes it.
 */
export async function download(
  source: string,
  partial: string,
  onProgress?: (done: number, total: number) => void,
): Promise<Downloaded> {
  const h256 = createHash('sha256');
  const h512 = createHash('sha512');
  let have = 0;
  if (fs.existsSync(partial)) have = await hashExisting(partial, h256, h512);
  let body: Readable;
  let total: number;
  let append = have > 0;
  if (isHttp(source)) {
    let res: Response;
    try {
      res = await fetch(source, { redirect: 'follow', headers: have > 0 ? { range: `bytes=${have}-` } : {} });
    } catch (e) {
      throw feedError(source, (e as Error).message);
    }
    if (res.status === 416 && have > 0) {
      // The partial file already holds everything (or more than) the server has: start again to be sure.
      await res.body?.cancel();
      await fs.promises.rm(partial, { force: true });
      return download(source, partial, onProgress);
    }
    if (!res.ok) throw feedError(source, `HTTP ${res.status}`);
    const length = Number(res.headers.get('content-length') ?? 'NaN');
    if (res.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!range || Number(range[1]) !== have) {
        await res.body?.cancel();
        throw feedError(source, 'the server answered a resumed download with another range');
      }
      total = range[3] === '*' ? have + length : Number(range[3]);
    } else {
      // 200: the server ignores Range (or there was nothing to resume): start from the first byte.
      append = false;
      have = 0;
      total = length;
    }
    if (!res.body) throw feedError(source, 'an empty response');
    body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  } else {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(source);
    } catch (e) {
      throw feedError(source, (e as Error).message);
    }
    if (!st.isFile()) throw feedError(source, 'not a regular file');
    if (have > st.size) {
      await fs.promises.rm(partial, { force: true });
      return download(source, partial, onProgress);
    }
    total = st.size;
    body = fs.createReadStream(source, { start: have, highWaterMark: 1024 * 1024 });
  }
  const hashes = append ? { h256, h512 } : { h256: createHash('sha256'), h512: createHash('sha512') };
  let done = have;
  await fs.promises.mkdir(path.dirname(partial), { recursive: true });
  try {
    await pipeline(
      body,
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          hashes.h256.update(chunk);
          hashes.h512.update(chunk);
          done += chunk.length;
          onProgress?.(done, Number.isFinite(total) ? total : done);
          cb(null, chunk);
        },
      }),
      fs.createWriteStream(partial, { flags: append ? 'a' : 'w', mode: 0o600 }),
    );
  } catch (e) {
    throw feedError(
      source,
      `the transfer stopped after ${done} bytes (run fetch again to resume): ${(e as Error).message}`,
    );
  }
  if (Number.isFinite(total) && done !== total) {
    throw feedError(source, `the transfer stopped after ${done} of ${total} bytes (run fetch again to resume)`);
  }
  const fd = await fs.promises.open(partial, 'r');
  await fd.sync();
  await fd.close();
  return {
    file: partial,
    size: done,
    sha256: hashes.h256.digest('hex'),
    sha512: hashes.h512.digest('hex'),
    resumedFrom: append ? have : 0,
  };
}
