/**
 * Keystone v3 for the glance feed: a token from an application credential (POST /v3/auth/tokens, the way
 * `openstack --os-auth-type v3applicationcredential` does it), the image endpoint from the token's catalog, and a new
 * token when the one in hand is about to expire (a long fetch outlives Keystone's default hour). The secret is read
 * from the file or environment variable the feed names, at each fetch, and never written anywhere.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { readBoundedBody } from './download.js';
import type { GlanceFeedConfig, KeystoneAuth } from './glance-config.js';

/** A token this close to its expiry is replaced before the next request. */
const RENEW_BEFORE_MS = 5 * 60_000;
const MAX_RESPONSE = 4 * 1024 * 1024;
const TIMEOUT_MS = 60_000;

const tokenResponseSchema = z.looseObject({
  token: z.looseObject({
    expires_at: z.string().max(64),
    catalog: z
      .array(
        z.looseObject({
          type: z.string().max(255),
          endpoints: z
            .array(
              z.looseObject({
                interface: z.string().max(32),
                region_id: z.string().max(255).nullish(),
                region: z.string().max(255).nullish(),
                url: z.string().max(2048),
              }),
            )
            .max(1000),
        }),
      )
      .max(1000)
      .default([]),
  }),
});

function keystoneError(c: GlanceFeedConfig, why: string): EcluseError {
  return new EcluseError('E_FEED', `feed ${c.name}: Keystone ${c.keystone?.authUrl ?? ''}: ${why}`, {
    check: 'feed',
  });
}

/** The application credential secret, read now. */
function readSecret(c: GlanceFeedConfig, k: KeystoneAuth): string {
  let secret: string | undefined;
  if (k.applicationCredentialSecretEnv !== undefined) {
    secret = process.env[k.applicationCredentialSecretEnv];
    if (secret === undefined) {
      throw keystoneError(c, `the environment variable ${k.applicationCredentialSecretEnv} holds no secret`);
    }
  } else {
    const file = k.applicationCredentialSecretFile as string;
    let size: number;
    try {
      size = fs.statSync(file).size;
      secret = size > 4096 ? '' : fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw keystoneError(c, `cannot read the secret file ${file}: ${(e as Error).message}`);
    }
    if (size > 4096) throw keystoneError(c, `cannot read the secret file ${file}: it is larger than 4 KiB`);
  }
  secret = secret.trim();
  if (secret === '' || /[\r\n]/.test(secret)) throw keystoneError(c, 'the secret is empty or not on one line');
  return secret;
}

/** `authUrl` with `/v3` at the end. */
export function v3Root(authUrl: string): string {
  const base = authUrl.replace(/\/+$/, '');
  return /\/v3$/.test(base) ? base : `${base}/v3`;
}

export class KeystoneSession {
  private constructor(
    private readonly config: GlanceFeedConfig,
    private tokenValue: string,
    private expiresAt: number,
    /** The image endpoint the catalog names for the feed's interface and region, if any. */
    readonly imageEndpoint: string | null,
  ) {}

  /** Authenticates with the feed's application credential. */
  static async open(c: GlanceFeedConfig): Promise<KeystoneSession> {
    const got = await KeystoneSession.authenticate(c);
    return new KeystoneSession(c, got.token, got.expiresAt, got.imageEndpoint);
  }

  /** The token in hand, as it is. */
  get current(): string {
    return this.tokenValue;
  }

  /** A token valid for a while yet: the one in hand, or a new one when it is about to expire. */
  async token(now = Date.now()): Promise<string> {
    if (this.expiresAt - now < RENEW_BEFORE_MS) {
      const got = await KeystoneSession.authenticate(this.config);
      this.tokenValue = got.token;
      this.expiresAt = got.expiresAt;
    }
    return this.tokenValue;
  }

  private static async authenticate(
    c: GlanceFeedConfig,
  ): Promise<{ token: string; expiresAt: number; imageEndpoint: string | null }> {
    const k = c.keystone;
    if (!k) throw keystoneError(c, 'the feed has no keystone section');
    const body = {
      auth: {
        identity: {
          methods: ['application_credential'],
          application_credential: { id: k.applicationCredentialId, secret: readSecret(c, k) },
        },
      },
    };
    let res: Response;
    try {
      res = await fetch(`${v3Root(k.authUrl)}/auth/tokens`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify(body),
        redirect: 'error',
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
    } catch (e) {
      throw keystoneError(c, (e as Error).message);
    }
    if (res.status === 401) {
      await res.body?.cancel();
      throw keystoneError(c, `HTTP 401: the application credential ${k.applicationCredentialId} was refused`);
    }
    if (res.status !== 201 && res.status !== 200) {
      await res.body?.cancel();
      throw keystoneError(c, `HTTP ${res.status} for a token`);
    }
    const token = res.headers.get('x-subject-token');
    if (!token || !/^[\x21-\x7e]{1,8192}$/.test(token)) {
      await res.body?.cancel();
      throw keystoneError(c, 'the answer carries no usable X-Subject-Token');
    }
    const answer = await readBoundedBody(res, MAX_RESPONSE);
    if (answer === null) throw keystoneError(c, `an answer of more than ${MAX_RESPONSE} bytes`);
    let parsed: z.infer<typeof tokenResponseSchema>;
    try {
      parsed = tokenResponseSchema.parse(JSON.parse(answer.toString('utf8')));
    } catch {
      throw keystoneError(c, 'the token answer is not a Keystone v3 token');
    }
    const expiresAt = Date.parse(parsed.token.expires_at);
    if (!Number.isFinite(expiresAt))
      throw keystoneError(c, `the token expiry "${parsed.token.expires_at}" is not a time`);
    const endpoints = parsed.token.catalog
      .filter((s) => s.type === 'image')
      .flatMap((s) => s.endpoints)
      .filter((e) => e.interface === k.interface)
      .filter((e) => k.region === undefined || (e.region_id ?? e.region) === k.region);
    const url = endpoints[0]?.url;
    return { token, expiresAt, imageEndpoint: url && /^https?:\/\//i.test(url) && URL.canParse(url) ? url : null };
  }
}
