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

/**
 * The body of an HTTP answer, whole, if it is at most `max` bytes (by its Content-Length, then by what arrives);
 * null, with the rest of the body dropped, when it is longer.
 */
export async function readBoundedBody(res: Response, max: number): Promise<Buffer | null> {
  if (Number(res.headers.get('content-length') ?? '0') > max) {
    await res.body?.cancel();
    return null;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of (res.body ?? []) as AsyncIterable<Uint8Array>) {
    n += chunk.length;
    if (n > max) {
      await res.body?.cancel().catch(() => undefined);
      return null;
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

/** fetch()'s own message is only "fetch failed": the reason is in its cause (ECONNREFUSED, other side closed, ...). */
export function fetchFailure(e: unknown): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const cause = err.cause;
  if (!cause) return err.message;
  return `${err.message} (${[cause.code, cause.message].filter(Boolean).join(': ')})`;
}

/**
 * A GET of a small file, tried a second time when the first attempt found its kept-alive connection closed by the
 * server in the meantime (the server's idle timeout racing our request): the request never reached the server, so
 * sending it again is safe. Any other failure is reported as it is.
 */
async function fetchRetryingStaleSocket(source: string): Promise<Response> {
  const once = (): Promise<Response> => fetch(source, { redirect: 'follow', signal: AbortSignal.timeout(60_000) });
  try {
    return await once();
  } catch (e) {
    const code = (e as { cause?: { code?: string } }).cause?.code;
    if (code !== 'ECONNRESET' && code !== 'UND_ERR_SOCKET') throw e;
    return await once();
  }
}

/** Reads a whole (small) file from the mirror, at most `max` bytes; null when it does not exist (404 / ENOENT). */
export async function readSmall(source: string, max: number): Promise<Buffer | null> {
  if (isHttp(source)) {
    let res: Response;
    try {
      res = await fetchRetryingStaleSocket(source);
    } catch (e) {
      throw feedError(source, fetchFailure(e));
    }
    if (res.status === 404 || res.status === 410) return null;
    if (!res.ok) throw feedError(source, `HTTP ${res.status}`);
    const body = await readBoundedBody(res, max);
    if (body === null) throw feedError(source, `it is more than the ${max} bytes allowed`);
    return body;
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

/** Anything fed every byte of the artifact in order (a digest, a signature verifier). */
export interface Tap {
  update(chunk: Buffer): void;
}

export interface Downloaded<T extends Tap = Tap> {
  file: string;
  size: number;
  sha256: string;
  sha512: string;
  /** Glance's `checksum`, computed in the same pass and carried signed (docs/FORMAT.md 4.8). */
  md5: string;
  /** Bytes that were already on disk from an earlier, interrupted fetch. */
  resumedFrom: number;
  /** The taps that saw every byte of `file` (made by `DownloadOptions.taps`). */
  taps: T[];
}

export interface DownloadOptions<T extends Tap = Tap> {
  /** Request headers (an X-Auth-Token). */
  headers?: Record<string, string>;
  /** `error` where a redirect must not carry the headers elsewhere (default `follow`). */
  redirect?: 'follow' | 'error';
  /** Makes the taps fed every byte (those already on disk first); made again when the download starts over. */
  taps?: () => T[];
  /**
   * The size the vendor published: a server announcing or sending another size is refused (E_VENDOR_DIGEST) before
   * or as soon as it shows, and a partial file longer than it is started over.
   */
  expectedSize?: number;
  /** What the refusals name (default: the source URL). */
  what?: string;
  /** Give up (resumable) when no byte arrives for this long, headers included (default STALL_TIMEOUT_MS). */
  stallTimeoutMs?: number;
}

const seconds = (ms: number) => Number((ms / 1000).toFixed(1));

/** A transfer with no byte for this long is stopped (and resumed by the next fetch). */
export const STALL_TIMEOUT_MS = 60_000;

/**
 * An abort signal that fires when `alive()` has not been called for `ms`: a server that stops sending without closing
 * the connection would otherwise hold the fetch for undici's 5 minutes per phase, or forever between its checks.
 */
function stallWatch(ms: number): { signal: AbortSignal; alive(): void; stop(): void; stalled(): boolean } {
  const controller = new AbortController();
  let last = Date.now();
  let stalled = false;
  const timer = setInterval(
    () => {
      if (Date.now() - last < ms) return;
      stalled = true;
      clearInterval(timer);
      // The reason never reaches an operator: download() turns a stall into E_FEED (run fetch again to resume).
      controller.abort(new DOMException(`no byte arrived for ${seconds(ms)} s`, 'TimeoutError'));
    },
    Math.min(ms, 1000),
  );
  timer.unref();
  return {
    signal: controller.signal,
    alive: () => {
      last = Date.now();
    },
    stop: () => clearInterval(timer),
    stalled: () => stalled,
  };
}

async function feedExisting(file: string, sinks: Tap[]): Promise<number> {
  let n = 0;
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    for (const s of sinks) s.update(chunk as Buffer);
    n += (chunk as Buffer).length;
  }
  return n;
}

function sizeRefusal(what: string, got: string, expected: number): EcluseError {
  return new EcluseError('E_VENDOR_DIGEST', `${what}: ${got}, the vendor published ${expected} bytes`, {
    check: 'vendor-digest',
  });
}

/**
 * Streams `source` into `partial` (kept across runs), resuming where an earlier run stopped. On return the file is
 * complete and fsynced; the caller checks the digests and renames or removes it.
 */
export async function download<T extends Tap = Tap>(
  source: string,
  partial: string,
  onProgress?: (done: number, total: number) => void,
  o: DownloadOptions<T> = {},
): Promise<Downloaded<T>> {
  const what = o.what ?? source;
  const expected = o.expectedSize;
  const fresh = () => ({
    h256: createHash('sha256'),
    h512: createHash('sha512'),
    h5: createHash('md5'),
    taps: o.taps?.() ?? [],
  });
  let sinks = fresh();
  let have = 0;
  if (fs.existsSync(partial)) {
    if (expected !== undefined && (await fs.promises.stat(partial)).size > expected) {
      await fs.promises.rm(partial, { force: true });
    } else have = await feedExisting(partial, [sinks.h256, sinks.h512, sinks.h5, ...sinks.taps]);
  }
  let body: Readable;
  let total: number;
  let append = have > 0;
  const watch = stallWatch(o.stallTimeoutMs ?? STALL_TIMEOUT_MS);
  try {
    return await transfer();
  } catch (e) {
    if (e instanceof EcluseError || !watch.stalled()) throw e;
    throw feedError(
      source,
      `no byte arrived for ${seconds(o.stallTimeoutMs ?? STALL_TIMEOUT_MS)} s (run fetch again to resume)`,
    );
  } finally {
    watch.stop();
  }

  async function transfer(): Promise<Downloaded<T>> {
    if (isHttp(source)) {
      let res: Response;
      try {
        res = await fetch(source, {
          redirect: o.redirect ?? 'follow',
          headers: { ...o.headers, ...(have > 0 ? { range: `bytes=${have}-` } : {}) },
          signal: watch.signal,
        });
      } catch (e) {
        if (watch.stalled()) throw e;
        throw feedError(source, (e as Error).message);
      }
      watch.alive();
      if (res.status === 416 && have > 0) {
        // The partial file already holds everything (or more than) the server has: start again to be sure.
        await res.body?.cancel();
        await fs.promises.rm(partial, { force: true });
        watch.stop(); // the fresh start has its own watch
        return download(source, partial, onProgress, o);
      }
      if (!res.ok) {
        await res.body?.cancel();
        throw feedError(source, `HTTP ${res.status}`);
      }
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
      if (expected !== undefined && Number.isFinite(total) && total !== expected) {
        await res.body?.cancel();
        throw sizeRefusal(what, `the server sends ${total} bytes`, expected);
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
        watch.stop(); // the fresh start has its own watch
        return download(source, partial, onProgress, o);
      }
      total = st.size;
      body = fs.createReadStream(source, { start: have, highWaterMark: 1024 * 1024 });
    }
    if (!append) sinks = fresh();
    let done = have;
    await fs.promises.mkdir(path.dirname(partial), { recursive: true });
    try {
      await pipeline(
        body,
        new Transform({
          transform(chunk: Buffer, _e, cb) {
            watch.alive();
            done += chunk.length;
            if (expected !== undefined && done > expected) {
              cb(sizeRefusal(what, `the server sent more than ${expected} bytes`, expected));
              return;
            }
            sinks.h256.update(chunk);
            sinks.h512.update(chunk);
            sinks.h5.update(chunk);
            for (const t of sinks.taps) t.update(chunk);
            onProgress?.(done, Number.isFinite(total) ? total : done);
            cb(null, chunk);
          },
        }),
        fs.createWriteStream(partial, { flags: append ? 'a' : 'w', mode: 0o600 }),
        { signal: watch.signal },
      );
    } catch (e) {
      if (e instanceof EcluseError || watch.stalled()) throw e;
      throw feedError(
        source,
        `the transfer stopped after ${done} bytes (run fetch again to resume): ${(e as Error).message}`,
      );
    }
    if (Number.isFinite(total) && done !== total) {
      throw feedError(source, `the transfer stopped after ${done} of ${total} bytes (run fetch again to resume)`);
    }
    if (expected !== undefined && done !== expected) {
      throw sizeRefusal(what, `the server sent ${done} bytes`, expected);
    }
    const fd = await fs.promises.open(partial, 'r');
    await fd.sync();
    await fd.close();
    return {
      file: partial,
      size: done,
      sha256: sinks.h256.digest('hex'),
      sha512: sinks.h512.digest('hex'),
      md5: sinks.h5.digest('hex'),
      resumedFrom: append ? have : 0,
      taps: sinks.taps,
    };
  }
}
