/**
 * A small client for the push side of the OCI Distribution API, enough to copy verified images byte for byte into a
 * site's registry (the CNCF distribution registry, Harbor): blob HEAD, monolithic upload (POST a session, PUT the
 * bytes with `?digest=`), manifest PUT by digest or tag, manifest HEAD and DELETE. Authentication follows the
 * registry's challenge: `Basic` (the credentials as they are), or `Bearer realm=...,service=...` (a token for the
 * repository's `pull,push` scope from the realm, asked with the credentials, or anonymously without any; cached
 * until it expires).
 *
 * Why not `skopeo copy` from an OCI layout view of the store: Debian's skopeo 1.9 cannot read a Docker-media-type
 * manifest out of an OCI layout ("no descriptor found for reference"), and without --preserve-digests it converts
 * them to OCI (another digest). Sending the stored bytes ourselves keeps every digest the vendor's, whatever the
 * media type, and needs no skopeo on the import station.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { pipeline, type Readable, Transform } from 'node:stream';
import { EcluseError } from '../../sneakernet/errors.js';
import type { RegistryCredentials } from './auth-file.js';
import {
  errorOf,
  parseChallenge,
  readBounded,
  RegistryRequestError,
  sendStream,
  type Answer,
  type Challenge,
} from './registry-http.js';

export interface RegistryClientOptions {
  timeoutMs?: number;
  /** For uploads: how long one blob may take. */
  uploadTimeoutMs?: number;
}

export class RegistryClient {
  private readonly tokens = new Map<string, { value: string; expires: number }>();
  private challenge: Challenge | undefined;
  private readonly timeoutMs: number;
  private readonly uploadTimeoutMs: number;

  constructor(
    /** `http(s)://host[:port]` (no path). */
    readonly origin: string,
    private readonly credentials: RegistryCredentials | undefined,
    o: RegistryClientOptions = {},
  ) {
    this.timeoutMs = o.timeoutMs ?? 60_000;
    this.uploadTimeoutMs = o.uploadTimeoutMs ?? 24 * 3_600_000;
  }

  private basic(): string | undefined {
    const c = this.credentials;
    return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined;
  }

  private async token(challenge: Extract<Challenge, { scheme: 'bearer' }>, scope: string): Promise<string> {
    const cached = this.tokens.get(scope);
    if (cached && cached.expires - Date.now() > 10_000) return cached.value;
    const u = new URL(challenge.realm);
    if (challenge.service) u.searchParams.set('service', challenge.service);
    u.searchParams.set('scope', scope);
    const basic = this.basic();
    const res = await this.fetch(u.toString(), {
      headers: { Accept: 'application/json', ...(basic ? { Authorization: basic } : {}) },
    });
    const body = await readBounded(res, 1024 * 1024);
    if (res.status !== 200) {
      throw new RegistryRequestError(
        res.status,
        `the registry's token service ${u.origin}${u.pathname} refused ${this.credentials ? `the credentials of ${this.credentials.username}` : 'an anonymous token'} for ${scope} (HTTP ${res.status})`,
      );
    }
    let j: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      j = JSON.parse(body.toString('utf8')) as typeof j;
    } catch {
      throw new RegistryRequestError(res.status, `the registry's token service answered something that is not JSON`);
    }
    const value = typeof j.token === 'string' ? j.token : typeof j.access_token === 'string' ? j.access_token : '';
    if (!value) throw new RegistryRequestError(res.status, `the registry's token service gave no token`);
    const seconds = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60;
    this.tokens.set(scope, { value, expires: Date.now() + seconds * 1000 });
    return value;
  }

  private async fetch(url: string, init: RequestInit & { timeoutMs?: number }): Promise<Response> {
    try {
      return await fetch(url, {
        redirect: 'manual',
        ...init,
        signal: AbortSignal.timeout(init.timeoutMs ?? this.timeoutMs),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new RegistryRequestError(
        0,
        `cannot reach ${new URL(url).origin}: ${cause?.code ?? cause?.message ?? (e as Error).message}`,
      );
    }
  }

  private async authorization(scope: string): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return this.basic();
    return `Bearer ${await this.token(c, scope)}`;
  }

  /**
   * One request to `path` (under the origin, or an absolute upload URL) for `scope`. A 401 answers with a challenge:
   * it is met and the request sent again, once; a body given as a stream cannot be sent twice, so a request with one
   * is sent only after an earlier request of the same scope learned the challenge.
   */
  async request(
    method: string,
    path: string,
    o: {
      scope: string;
      headers?: Record<string, string>;
      body?: Buffer | (() => Readable);
      length?: number;
      ok: number[];
      upload?: boolean;
    },
  ): Promise<Answer> {
    const url = /^https?:\/\//.test(path) ? path : `${this.origin}${path}`;
    if (new URL(url).origin !== new URL(this.origin).origin) {
      throw new RegistryRequestError(0, `the registry sent écluse to another server (${new URL(url).origin})`);
    }
    for (let round = 0; ; round++) {
      const headers: Record<string, string> = { ...o.headers };
      const auth = await this.authorization(o.scope);
      if (auth) headers.Authorization = auth;
      const timeoutMs = o.upload ? this.uploadTimeoutMs : this.timeoutMs;
      let res: Answer;
      if (typeof o.body === 'function') {
        if (o.length !== undefined) headers['Content-Length'] = String(o.length);
        res = await sendStream(url, method, headers, o.body(), timeoutMs);
      } else {
        const r = await this.fetch(url, { method, headers, body: o.body, timeoutMs });
        res = {
          status: r.status,
          headers: r.headers,
          body: method === 'HEAD' ? Buffer.alloc(0) : await readBounded(r),
        };
      }
      const answer = res.body;
      if (res.status === 401 && round === 0) {
        const c = parseChallenge(res.headers.get('www-authenticate'));
        const learned = c && (this.challenge?.scheme !== c.scheme || c.scheme === 'bearer');
        if (c && learned && !(c.scheme === 'basic' && !this.credentials)) {
          this.challenge = c;
          if (c.scheme === 'bearer') this.tokens.delete(o.scope);
          continue;
        }
      }
      if (!o.ok.includes(res.status)) {
        const e = errorOf(answer);
        const why =
          res.status === 401
            ? this.credentials
              ? `the registry refused the credentials of ${this.credentials.username}`
              : 'the registry wants credentials: add the target again with --authfile'
            : res.status === 403
              ? `the registry denies ${this.credentials?.username ?? 'anonymous'} ${o.scope.split(':').pop() ?? ''} on ${o.scope.split(':')[1] ?? ''}`
              : `HTTP ${res.status}`;
        throw new RegistryRequestError(
          res.status,
          `${method} ${new URL(url).pathname}: ${why}${e.message ? ` (${e.message})` : ''}`,
          e.code,
        );
      }
      return { status: res.status, headers: res.headers, body: answer };
    }
  }

  /** Whether the repository already has the blob (HEAD 200). */
  async hasBlob(repository: string, digest: string): Promise<boolean> {
    const r = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`, {
      scope: `repository:${repository}:pull,push`,
      ok: [200, 404],
    });
    return r.status === 200;
  }

  /**
   * Uploads `file` as blob `digest` (POST a session, PUT the bytes with `?digest=`), hashing the bytes as they go:
   * a stored file that is not its digest any more is never left at the target under that name.
   */
  async uploadBlob(repository: string, digest: string, file: string, size: number): Promise<void> {
    const scope = `repository:${repository}:pull,push`;
    const started = await this.request('POST', `/v2/${repository}/blobs/uploads/`, {
      scope,
      headers: { 'Content-Length': '0' },
      ok: [202],
    });
    const location = started.headers.get('location');
    if (!location) throw new RegistryRequestError(202, 'the registry started an upload without a Location');
    const put = new URL(location, this.origin);
    put.searchParams.set('digest', digest);
    // The digest of the bytes as they were sent: known once the file's last byte has gone through the hash.
    let hashed: Promise<string> = Promise.resolve('?');
    const damaged = (sent: string) =>
      new EcluseError(
        'E_STORE',
        `the stored blob ${digest} no longer has that digest (${sent}): run "ecluse store check"`,
        { check: 'store-blob', digest },
      );
    const body = () => {
      const hash = crypto.createHash('sha256');
      let done: (d: string) => void = () => undefined;
      hashed = new Promise<string>((resolve) => (done = resolve));
      const through = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
        flush(cb) {
          done(`sha256:${hash.digest('hex')}`);
          cb();
        },
      });
      // a read error of the file destroys the stream sent (the request fails, naming the store)
      return pipeline(fs.createReadStream(file, { highWaterMark: 1024 * 1024 }), through, () => undefined);
    };
    let r: Answer;
    try {
      r = await this.request('PUT', put.toString(), {
        scope,
        headers: { 'Content-Type': 'application/octet-stream' },
        body,
        length: size,
        ok: [201],
        upload: true,
      });
    } catch (e) {
      // A registry that checks the digest refuses the upload first: say that the store is at fault, not the target.
      const sent = await Promise.race([hashed, new Promise<string>((res) => setTimeout(() => res('?'), 1000))]);
      if (sent !== '?' && sent !== digest) throw damaged(sent);
      throw e;
    }
    const sent = await hashed;
    if (sent !== digest) throw damaged(sent);
    const answered = r.headers.get('docker-content-digest');
    if (answered && answered !== digest) {
      throw new RegistryRequestError(201, `the registry stored blob ${digest} as ${answered}`);
    }
  }

  /** PUTs a manifest under `reference` (a digest or a tag); returns the digest the registry answered with. */
  async putManifest(repository: string, reference: string, mediaType: string, bytes: Buffer): Promise<string | null> {
    const r = await this.request('PUT', `/v2/${repository}/manifests/${reference}`, {
      scope: `repository:${repository}:pull,push`,
      headers: { 'Content-Type': mediaType },
      body: bytes,
      ok: [201],
    });
    return r.headers.get('docker-content-digest');
  }

  /** The digest the registry serves for `reference` (HEAD, accepting `mediaType`), null when it has none. */
  async manifestDigest(repository: string, reference: string, mediaType: string): Promise<string | null> {
    const r = await this.request('HEAD', `/v2/${repository}/manifests/${reference}`, {
      scope: `repository:${repository}:pull,push`,
      headers: { Accept: mediaType },
      ok: [200, 404],
    });
    return r.status === 200 ? r.headers.get('docker-content-digest') : null;
  }

  /** Deletes a manifest by digest (a registry without deletes answers 405: reported, not thrown). */
  async deleteManifest(repository: string, digest: string): Promise<boolean> {
    const r = await this.request('DELETE', `/v2/${repository}/manifests/${digest}`, {
      scope: `repository:${repository}:pull,push,delete`,
      ok: [202, 404, 405],
    });
    return r.status === 202;
  }
}
