/**
 * A small client for a site's own Glance (Image API v2), used to stage verified images into it: Keystone v3 password
 * or application-credential tokens (cached until shortly before they expire), or no auth (a lab Glance).
 */
import fs from 'node:fs';
import { Readable } from 'node:stream';

export type TargetAuth =
  | { type: 'none' }
  | {
      type: 'password';
      authUrl: string;
      username: string;
      password: string;
      userDomain: string;
      project: string;
      projectDomain: string;
    }
  | { type: 'application_credential'; authUrl: string; id: string; secret: string };

export class GlanceRequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'GlanceRequestError';
  }
}

const join = (base: string, p: string): string => `${base.replace(/\/+$/, '')}${p}`;

/** The Keystone v3 token request body for `auth`. */
export function keystoneAuthBody(auth: Exclude<TargetAuth, { type: 'none' }>): unknown {
  if (auth.type === 'password') {
    return {
      auth: {
        identity: {
          methods: ['password'],
          password: { user: { name: auth.username, domain: { name: auth.userDomain }, password: auth.password } },
        },
        scope: { project: { name: auth.project, domain: { name: auth.projectDomain } } },
      },
    };
  }
  return {
    auth: {
      identity: { methods: ['application_credential'], application_credential: { id: auth.id, secret: auth.secret } },
    },
  };
}

export class GlanceClient {
  private token: { value: string; expires: number } | undefined;

  constructor(
    readonly url: string,
    private readonly auth: TargetAuth,
    private readonly timeoutMs = 60_000,
  ) {}

  private async authToken(): Promise<string | undefined> {
    if (this.auth.type === 'none') return undefined;
    if (this.token && this.token.expires - Date.now() > 60_000) return this.token.value;
    const authUrl = this.auth.authUrl.replace(/\/+$/, '');
    const res = await fetch(`${authUrl.endsWith('/v3') ? authUrl : `${authUrl}/v3`}/auth/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify(keystoneAuthBody(this.auth)),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const value = res.headers.get('x-subject-token');
    if (res.status !== 201 || !value) {
      throw new GlanceRequestError(res.status, `Keystone refused the credentials (HTTP ${res.status})`);
    }
    const body = (await res.json().catch(() => ({}))) as { token?: { expires_at?: string } };
    const expires = Date.parse(body.token?.expires_at ?? '') || Date.now() + 3_600_000;
    this.token = { value, expires };
    return value;
  }

  async request(
    method: string,
    path: string,
    o: { json?: unknown; body?: Readable; type?: string; length?: number; ok?: number[] } = {},
  ): Promise<{ status: number; headers: Headers; json: unknown }> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    const token = await this.authToken();
    if (token) headers['X-Auth-Token'] = token;
    let body: string | ReadableStream | undefined;
    if (o.json !== undefined) {
      headers['Content-Type'] = o.type ?? 'application/json';
      body = JSON.stringify(o.json);
    } else if (o.body) {
      headers['Content-Type'] = o.type ?? 'application/octet-stream';
      if (o.length !== undefined) headers['Content-Length'] = String(o.length);
      body = Readable.toWeb(o.body) as ReadableStream;
    }
    const res = await fetch(join(this.url, path), {
      method,
      headers,
      body,
      ...(o.body ? { duplex: 'half' } : {}),
      signal: AbortSignal.timeout(o.body ? 24 * 3_600_000 : this.timeoutMs),
    });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? (JSON.parse(text) as unknown) : undefined;
    } catch {
      json = undefined;
    }
    if (!(o.ok ?? [200, 201, 204]).includes(res.status)) {
      const msg = (json as { message?: string } | undefined)?.message ?? text.slice(0, 300);
      throw new GlanceRequestError(
        res.status,
        `${method} ${path}: HTTP ${res.status} ${msg.replace(/<br \/>/g, ' ').trim()}`,
      );
    }
    return { status: res.status, headers: res.headers, json };
  }

  async createImage(record: Record<string, unknown>): Promise<Record<string, unknown>> {
    return (await this.request('POST', '/v2/images', { json: record, ok: [201] })).json as Record<string, unknown>;
  }

  async uploadFile(id: string, file: string): Promise<void> {
    const { size } = await fs.promises.stat(file);
    await this.request('PUT', `/v2/images/${id}/file`, {
      body: fs.createReadStream(file, { highWaterMark: 1024 * 1024 }),
      length: size,
      ok: [204],
    });
  }

  async getImage(id: string): Promise<Record<string, unknown>> {
    return (await this.request('GET', `/v2/images/${id}`, { ok: [200] })).json as Record<string, unknown>;
  }

  async deleteImage(id: string): Promise<void> {
    await this.request('DELETE', `/v2/images/${id}`, { ok: [204, 404] });
  }
}
