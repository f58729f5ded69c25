/**
 * Keystone token validation for the Glance API, as keystonemiddleware's auth_token does it: the station logs in as
 * its service user (password, or application credential; the secret read from its file at each login), and asks
 * `GET /v3/auth/tokens` with `X-Auth-Token: <service token>` and `X-Subject-Token: <the user's token>`.
 *
 * Answers (valid and invalid) are kept for `cacheSeconds` (at most 60 s, never past the token's expiry), in at most
 * MAX_ENTRIES entries keyed by the token's sha256: a token revoked in Keystone stops working here within that time.
 * Keystone unreachable: 503 (the request is neither granted nor cached).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { keystoneAuthBody } from '../targets/client.js';
import type { KeystoneSettings } from './keystone-settings.js';

export const MAX_ENTRIES = 10_000;
const MAX_RESPONSE = 1024 * 1024;
const TIMEOUT_MS = 15_000;
/** A service token this close to its expiry is replaced before use. */
const RENEW_BEFORE_MS = 5 * 60_000;
const TOKEN_SHAPE = /^[\x21-\x7e]{1,8192}$/;

/** Who a valid Keystone token is: the roles Glance knows and the project that owns what they create. */
export interface KeystoneIdentity {
  userId: string;
  userName: string;
  /** The project the token is scoped to, or null for an unscoped or domain-scoped token. */
  projectId: string | null;
  roles: string[];
  expiresAt: number;
}

const tokenSchema = z.looseObject({
  token: z.looseObject({
    expires_at: z.string().max(64),
    user: z.looseObject({ id: z.string().max(255), name: z.string().max(255).default('') }),
    project: z.looseObject({ id: z.string().max(255) }).optional(),
    roles: z
      .array(z.looseObject({ name: z.string().max(255) }))
      .max(1000)
      .default([]),
  }),
});

/** `url` with `/v3` at its end. */
export function identityV3(url: string): string {
  const base = url.replace(/\/+$/, '');
  return /\/v3$/.test(base) ? base : `${base}/v3`;
}

function keystoneError(s: KeystoneSettings, why: string): EcluseError {
  return new EcluseError(
    'E_KEYSTONE',
    `Keystone ${s.url}: ${why}; check the settings shown by "ecluse site show" and set them with "ecluse site keystone"`,
    { check: 'keystone' },
  );
}

function readSecretFile(s: KeystoneSettings, file: string): string {
  let secret: string;
  let size: number;
  try {
    size = fs.statSync(file).size;
    secret = size > 4096 ? '' : fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw keystoneError(s, `cannot read the secret file ${file}: ${(e as Error).message}`);
  }
  if (size > 4096) throw keystoneError(s, `cannot read the secret file ${file}: it is larger than 4 KiB`);
  if (secret === '' || /[\r\n]/.test(secret))
    throw keystoneError(s, `the secret file ${file} is empty or not one line`);
  return secret;
}

async function boundedJson(res: Response): Promise<unknown> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_RESPONSE) {
    await res.body?.cancel();
    throw new EcluseError('E_KEYSTONE', `Keystone sent an answer of ${declared} bytes`, { check: 'keystone' });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body ?? []) {
    size += (chunk as Uint8Array).length;
    if (size > MAX_RESPONSE) {
      throw new EcluseError('E_KEYSTONE', `Keystone sent an answer of more than ${MAX_RESPONSE} bytes`, {
        check: 'keystone',
      });
    }
    chunks.push(Buffer.from(chunk as Uint8Array));
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}

type Cached = { identity: KeystoneIdentity | null; until: number };

export class KeystoneTokens {
  private service: { token: string; expiresAt: number } | undefined;
  private login: Promise<{ token: string; expiresAt: number }> | undefined;
  private readonly cache = new Map<string, Cached>();

  constructor(
    readonly settings: KeystoneSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** The identity of a user's token, or null when Keystone says it is not valid (unknown, expired, revoked). */
  async validate(token: string): Promise<KeystoneIdentity | null> {
    if (!TOKEN_SHAPE.test(token)) return null;
    const key = crypto.createHash('sha256').update(token).digest('hex');
    const now = this.now();
    const hit = this.cache.get(key);
    if (hit && hit.until > now) return hit.identity;
    if (hit) this.cache.delete(key);
    let identity = await this.ask(token, false);
    if (identity && identity.expiresAt <= now) identity = null;
    const ttl = this.settings.cacheSeconds * 1000;
    const until = Math.min(now + ttl, identity ? identity.expiresAt : Infinity);
    if (ttl > 0) {
      if (this.cache.size >= MAX_ENTRIES) {
        for (const [k, v] of this.cache) if (v.until <= now) this.cache.delete(k);
        while (this.cache.size >= MAX_ENTRIES) this.cache.delete(this.cache.keys().next().value as string);
      }
      this.cache.set(key, { identity, until });
    }
    return identity;
  }

  /** How many answers are held now (for tests and status). */
  get cached(): number {
    return this.cache.size;
  }

  private async ask(token: string, retried: boolean): Promise<KeystoneIdentity | null> {
    const svc = await this.serviceToken();
    let res: Response;
    try {
      res = await fetch(`${identityV3(this.settings.url)}/auth/tokens`, {
        headers: { 'X-Auth-Token': svc, 'X-Subject-Token': token, Accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (e) {
      throw keystoneError(this.settings, `validating a token: ${(e as Error).message}`);
    }
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      // The service token itself expired or was revoked: log in again, once.
      this.service = undefined;
      if (!retried) return this.ask(token, true);
      throw keystoneError(this.settings, `HTTP ${res.status}: the service user may not validate tokens`);
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw keystoneError(this.settings, `HTTP ${res.status} validating a token`);
    }
    let parsed: z.infer<typeof tokenSchema>;
    try {
      parsed = tokenSchema.parse(await boundedJson(res));
    } catch (e) {
      throw keystoneError(this.settings, `the validation answer is not a Keystone v3 token (${(e as Error).message})`);
    }
    const t = parsed.token;
    const expiresAt = Date.parse(t.expires_at);
    if (!Number.isFinite(expiresAt)) return null;
    return {
      userId: t.user.id,
      userName: t.user.name,
      projectId: t.project?.id ?? null,
      roles: t.roles.map((r) => r.name.toLowerCase()),
      expiresAt,
    };
  }

  /** The service user's token, logging in when there is none or it is about to expire (one login at a time). */
  async serviceToken(): Promise<string> {
    if (this.service && this.service.expiresAt - this.now() > RENEW_BEFORE_MS) return this.service.token;
    this.login ??= this.logIn().finally(() => (this.login = undefined));
    this.service = await this.login;
    return this.service.token;
  }

  private async logIn(): Promise<{ token: string; expiresAt: number }> {
    const s = this.settings;
    // The same token request as the Glance targets make (password scoped to a project, or an application credential).
    const body = keystoneAuthBody(
      s.appCredentialId
        ? {
            type: 'application_credential',
            authUrl: s.url,
            id: s.appCredentialId,
            secret: readSecretFile(s, s.appCredentialSecretFile as string),
          }
        : {
            type: 'password',
            authUrl: s.url,
            username: s.user as string,
            password: readSecretFile(s, s.passwordFile as string),
            userDomain: s.userDomain,
            project: s.project as string,
            projectDomain: s.projectDomain,
          },
    );
    let res: Response;
    try {
      res = await fetch(`${identityV3(s.url)}/auth/tokens`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (e) {
      throw keystoneError(s, `logging in the service user: ${(e as Error).message}`);
    }
    const token = res.headers.get('x-subject-token');
    let expiresAt = NaN;
    try {
      if (res.status === 201 || res.status === 200) {
        const parsed = z
          .looseObject({ token: z.looseObject({ expires_at: z.string().max(64) }) })
          .parse(await boundedJson(res));
        expiresAt = Date.parse(parsed.token.expires_at);
      } else await res.body?.cancel();
    } catch {
      expiresAt = NaN;
    }
    if (res.status === 401) throw keystoneError(s, 'HTTP 401: the service user or its secret was refused');
    if (
      (res.status !== 201 && res.status !== 200) ||
      !token ||
      !TOKEN_SHAPE.test(token) ||
      !Number.isFinite(expiresAt)
    ) {
      throw keystoneError(s, `HTTP ${res.status}: no usable service token`);
    }
    return { token, expiresAt };
  }
}
