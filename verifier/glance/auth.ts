/**
 * Who may use the Glance API. Tokens (`ecluse token create --role reader|admin`) are 32 random bytes shown once and
 * stored as their sha256 only; a request presents one in `X-Auth-Token`.
 *
 *   - a known, unrevoked token gives its role (reader: GET/HEAD only; admin: everything), from anywhere;
 *   - without a known token, only loopback clients are served, as admin: `openstack --os-auth-type none` and
 *     `glance --os-auth-token x` (which send a placeholder token) keep working on the station itself, as the
 *     reference Glance without Keystone treats every request as an admin's;
 *   - any other client gets 401.
 *
 * At a site with Keystone (`ecluse site keystone`), a token that is not écluse's own is validated by the site's
 * Keystone (keystone-tokens.ts): its roles give `admin`, `member` or `reader`, and its project is the `owner` of what
 * it creates and decides what it sees (access.ts), as in Glance. Loopback clients without a valid token are then
 * refused too: the site's users, not the station's console, use that API.
 */
import { statement } from './statements.js';
import crypto from 'node:crypto';
import type express from 'express';
import { glanceTime, type Db } from '../db.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { GlanceHttpError, pyJson } from './errors.js';
import type { KeystoneIdentity, KeystoneTokens } from './keystone-tokens.js';

export type Role = 'reader' | 'admin';
export const ROLES: readonly Role[] = ['reader', 'admin'];

/** What a request may do: `member` is a Keystone user's (create and change what its project owns). */
export type ApiRole = Role | 'member';

export interface AuthContext {
  role: ApiRole;
  /** The token's id, or undefined for a loopback client without a token and for Keystone users. */
  tokenId: string | undefined;
  /**
   * The Keystone project of the request (images' `owner`), null for a token scoped to no project; undefined for
   * écluse's own tokens and loopback, which see every image (as the reference Glance without Keystone does).
   */
  project?: string | null;
  /** The Keystone user id, for the audit. */
  user?: string;
}

export interface TokenRecord {
  id: string;
  role: Role;
  name: string | null;
  created_at: string;
  revoked_at: string | null;
}

const TOKEN_PREFIX = 'ecl_';

export const tokenHash = (token: string): string => crypto.createHash('sha256').update(token, 'utf8').digest('hex');

/** Creates a token; returns it in clear (the only time it exists outside the caller) and its record. */
export function createToken(db: Db, role: Role, name?: string): { token: string; record: TokenRecord } {
  const token = TOKEN_PREFIX + crypto.randomBytes(32).toString('base64url');
  const hash = tokenHash(token);
  const record: TokenRecord = {
    id: hash.slice(0, 12),
    role,
    name: name ?? null,
    created_at: glanceTime(),
    revoked_at: null,
  };
  db.prepare('INSERT INTO api_tokens (id, sha256, role, name, created_at) VALUES (?, ?, ?, ?, ?)').run(
    record.id,
    hash,
    role,
    record.name,
    record.created_at,
  );
  return { token, record };
}

export function listTokens(db: Db): TokenRecord[] {
  return db
    .prepare('SELECT id, role, name, created_at, revoked_at FROM api_tokens ORDER BY created_at, id')
    .all() as TokenRecord[];
}

/** Revokes a token by id; false when there is no such unrevoked token. */
export function revokeToken(db: Db, id: string): boolean {
  return (
    db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(glanceTime(), id)
      .changes === 1
  );
}

/** The role of a presented token, or undefined when it is unknown or revoked. */
export function tokenRole(db: Db, token: string): { id: string; role: Role } | undefined {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return undefined;
  const row = statement(db, 'SELECT id, role FROM api_tokens WHERE sha256 = ? AND revoked_at IS NULL').get(
    tokenHash(token),
  ) as { id: string; role: Role } | undefined;
  return row;
}

export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

export function unauthorized(): GlanceHttpError {
  return new GlanceHttpError(401, undefined, {
    detail: 'A valid écluse API token is required in X-Auth-Token (ecluse token create) for clients beyond loopback.',
    headers: { 'WWW-Authenticate': 'X-Auth-Token' },
  });
}

/**
 * The 401 Glance answers at a Keystone site (keystonemiddleware's, whatever the Accept): a JSON body and where to get
 * a token.
 */
function rejectAsKeystonemiddleware(res: express.Response, keystone: KeystoneTokens): void {
  const body = pyJson({
    error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' },
  });
  res.status(401);
  res.setHeader('WWW-Authenticate', `Keystone uri="${keystone.settings.url.replace(/\/v3\/?$/, '')}"`);
  res.setHeader('Content-Type', 'application/json; charset=UTF-8');
  res.setHeader('Content-Length', String(Buffer.byteLength(body)));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

/** Glance's roles from Keystone's: admin, else member (or the legacy _member_), else reader. */
export function roleOf(roles: readonly string[]): ApiRole {
  if (roles.includes('admin')) return 'admin';
  if (roles.includes('member') || roles.includes('_member_')) return 'member';
  return 'reader';
}

/** Paths anyone may read without a token, as Glance's unauthenticated version discovery. */
const OPEN_PATHS = /^\/(versions)?$/;

export function authMiddleware(db: Db, keystone?: KeystoneTokens): express.RequestHandler {
  if (!keystone) {
    return (req, res, next) => {
      const token = req.get('x-auth-token');
      const known = token ? tokenRole(db, token) : undefined;
      let ctx: AuthContext;
      if (known) ctx = { role: known.role, tokenId: known.id };
      else if (isLoopback(req.socket.remoteAddress)) ctx = { role: 'admin', tokenId: undefined };
      else throw unauthorized();
      res.locals.auth = ctx;
      next();
    };
  }
  return async (req, res, next) => {
    const token = req.get('x-auth-token');
    const known = token ? tokenRole(db, token) : undefined;
    if (known) {
      res.locals.auth = { role: known.role, tokenId: known.id } satisfies AuthContext;
      next();
      return;
    }
    let identity: KeystoneIdentity | null = null;
    if (token) {
      try {
        identity = await keystone.validate(token);
      } catch (e) {
        if (e instanceof EcluseError) {
          console.error(`glance api: ${e.message}`);
          throw new GlanceHttpError(503, undefined, { detail: "The site's Keystone cannot validate tokens now." });
        }
        throw e;
      }
    }
    if (!identity) {
      if (OPEN_PATHS.test(req.path) && req.method === 'GET') {
        next();
        return;
      }
      rejectAsKeystonemiddleware(res, keystone);
      return;
    }
    res.locals.auth = {
      role: roleOf(identity.roles),
      tokenId: undefined,
      project: identity.projectId,
      user: identity.userId,
    } satisfies AuthContext;
    next();
  };
}

export function authOf(res: express.Response): AuthContext {
  return (res.locals.auth as AuthContext | undefined) ?? { role: 'reader', tokenId: undefined };
}

const policyRefusal = (action: string) =>
  new GlanceHttpError(403, `You are not authorized to complete ${action} action.`);

/** 403 in Glance's policy words unless the request is an admin's. */
export function requireAdmin(res: express.Response, action: string): void {
  if (authOf(res).role !== 'admin') throw policyRefusal(action);
}

/** 403 in Glance's policy words for a reader: admins and a Keystone project's members may write. */
export function requireWriter(res: express.Response, action: string): void {
  if (authOf(res).role === 'reader') throw policyRefusal(action);
}
