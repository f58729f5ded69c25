/**
 * The HTTP under the registry client (registry-client.ts): how a registry's answers are read (bounded), what its
 * challenge and error bodies say, and a request whose body is a stream of stored bytes.
 */
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { EcluseError } from '../../sneakernet/errors.js';

/** A manifest is at most 4 MiB (the distribution spec's limit); a token answer is small. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

export class RegistryRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The distribution error code of the answer's body (`MANIFEST_INVALID`, `DENIED`, ...), when there is one. */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'RegistryRequestError';
  }
}

export type Challenge = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service?: string };

/** Parses `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` (or Basic). */
export function parseChallenge(header: string | null): Challenge | undefined {
  if (!header) return undefined;
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const scheme = (m[1] ?? '').toLowerCase();
  if (scheme === 'basic') return { scheme: 'basic' };
  if (scheme !== 'bearer') return undefined;
  const params: Record<string, string> = {};
  for (const p of (m[2] ?? '').matchAll(/(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g)) {
    params[(p[1] ?? '').toLowerCase()] = p[2] ?? p[3] ?? '';
  }
  if (!params.realm || !/^https?:\/\//.test(params.realm)) return undefined;
  return { scheme: 'bearer', realm: params.realm, service: params.service };
}

export async function readBounded(res: Response, max = MAX_ANSWER_BYTES): Promise<Buffer> {
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) {
    n += c.length;
    if (n > max) {
      await res.body.cancel().catch(() => undefined);
      throw new RegistryRequestError(res.status, `the registry's answer is larger than ${max} bytes`);
    }
    chunks.push(Buffer.from(c));
  }
  return Buffer.concat(chunks);
}

/** The message of a distribution error body (`{"errors":[{"code","message"}]}`), or the start of the text. */
export function errorOf(body: Buffer): { code?: string; message: string } {
  const text = body.toString('utf8');
  try {
    const j = JSON.parse(text) as { errors?: { code?: unknown; message?: unknown }[] };
    const e = j.errors?.[0];
    if (e) {
      const code = typeof e.code === 'string' ? e.code : '';
      const message = typeof e.message === 'string' ? e.message : '';
      return { code, message: `${code} ${message}`.trim() };
    }
  } catch {
    // not JSON
  }
  return { message: text.slice(0, 200).replace(/\s+/g, ' ').trim() };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
}

/**
 * Sends a request whose body is a stream with node:http(s): measured on a 512 MiB blob into docker-registry, about
 * twice as fast as fetch with a stream body (3.1–3.3 s against 5.3–7.6 s on this machine).
 */
export function sendStream(
  url: string,
  method: string,
  headers: Record<string, string>,
  body: Readable,
  timeoutMs: number,
): Promise<Answer> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const unreachable = (e: Error & { code?: string }) => {
      body.destroy();
      reject(
        e instanceof RegistryRequestError
          ? e
          : new RegistryRequestError(0, `cannot reach ${u.origin}: ${e.code ?? e.message}`),
      );
    };
    const req = (u.protocol === 'https:' ? https : http).request(u, { method, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        if (n > MAX_ANSWER_BYTES)
          res.destroy(
            new RegistryRequestError(
              res.statusCode ?? 0,
              `the registry's answer is larger than ${MAX_ANSWER_BYTES} bytes`,
            ),
          );
        else chunks.push(c);
      });
      res.on('error', unreachable);
      res.on('end', () => {
        if (!body.readableEnded) body.destroy(); // answered early (a 401, a refusal): the rest is not needed
        const h = new Headers();
        for (const [k, v] of Object.entries(res.headers)) {
          if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
        }
        resolve({ status: res.statusCode ?? 0, headers: h, body: Buffer.concat(chunks) });
      });
    });
    req.on('timeout', () =>
      req.destroy(new RegistryRequestError(0, `cannot reach ${u.origin}: no answer within ${timeoutMs} ms`)),
    );
    req.on('error', unreachable);
    body.on('error', (e) => {
      reject(
        new EcluseError('E_STORE', `cannot read a stored blob to send it (${e.message}): run "ecluse store check"`, {
          check: 'store-blob',
        }),
      );
      req.destroy();
    });
    body.pipe(req);
  });
}
