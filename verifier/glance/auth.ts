/**
 * Who may use the Glance API. Tokens (`ecluse token create --role reader|admin`) are 32 random bytes shown once and
 * stored as their sha256 only; a request presents one in `X-Auth-Token`.
 *
 *   - a known, unrevoked token gives its role (reader: GET/HEAD only; admin: everything), from anywhere;
 *   - without a known token, only loopback clients are served, as admin: `openstack --os-auth-type none` and
 *     `glance --os-auth-token x` (which send a placeholder token) keep working on the station itself, as the
 *     reference Glance without Keystone treats every request as an admin's;
 *   - any other client gets 401.
 */
import crypto from 'node:crypto';
import type express from 'express';
import { glanceTime, type Db } from '../db.js';
import { GlanceHttpError } from './errors.js';

export type Role = 'reader' | 'admin';
export const ROLES: readonly Role[] = ['reader', 'admin'];

export interface AuthContext {
  role: Role;
  /** The token's id, or undefined for a loopback client without a token. */
  tokenId: string | undefined;
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
  const row = db
    .prepare('SELECT id, role FROM api_tokens WHERE sha256 = ? AND revoked_at IS NULL')
    .get(tokenHash(token)) as { id: string; role: Role } | undefined;
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

export function authMiddleware(db: Db): express.RequestHandler {
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

export function authOf(res: express.Response): AuthContext {
  return (res.locals.auth as AuthContext | undefined) ?? { role: 'reader', tokenId: undefined };
}

/** 403 in Glance's policy words unless the request is an admin's. */
export function requireAdmin(res: express.Response, action: string): void {
  if (authOf(res).role !== 'admin') {
    throw new GlanceHttpError(403, `You are not authorized to complete ${action} action.`);
  }
}
