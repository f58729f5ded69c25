/**
 * Accounts and sessions of the audit web view. Passwords are hashed with scrypt (node:crypto, N=2^15, r=8, p=1,
 * 16-byte salt); sessions are 32 random bytes given to the browser, of which only the SHA-256 is stored. Sessions
 * last 8 hours. Failed logins are rate-limited per client address and per account (5 per 15 minutes).
 */
import { createHash, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { storedRows } from '../../sneakernet/stored-rows.js';
import type { Db } from '../db.js';

export type Role = 'auditor' | 'operator';
export const ROLES: readonly Role[] = ['auditor', 'operator'];
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
export const SESSION_MS = 8 * 3600_000;

/** A row of `web_user` without its password hash: who may read the audit web view, and with what role. */
const userRow = z.object({ name: z.string(), role: z.enum(['auditor', 'operator']), created_at: z.string() });
export type User = z.output<typeof userRow>;
const USER_ADVICE = 'set the account again with "ecluse user add NAME --role ROLE"';
const users = storedRows('web_user', userRow, USER_ADVICE);
const credentials = storedRows('web_user', userRow.extend({ salt: z.string(), hash: z.string() }), USER_ADVICE);

function hashPassword(password: string, salt: Buffer): Buffer {
  return scryptSync(password.normalize('NFC'), salt, 32, SCRYPT);
}

export function addUser(db: Db, name: string, role: string, password: string): User {
  if (!NAME.test(name)) throw new EcluseError('E_USAGE', `invalid user name "${name}" (a-z, 0-9, . _ -)`);
  if (!ROLES.includes(role as Role)) throw new EcluseError('E_USAGE', `--role must be one of ${ROLES.join(', ')}`);
  if (password.length < 10) throw new EcluseError('E_INPUT', 'the password must have at least 10 characters');
  const salt = randomBytes(16);
  const created_at = new Date().toISOString();
  const r = db
    .prepare(
      `INSERT INTO web_user (name, role, salt, hash, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT(name) DO UPDATE SET role = excluded.role, salt = excluded.salt, hash = excluded.hash`,
    )
    .run(name, role, salt.toString('hex'), hashPassword(password, salt).toString('hex'), created_at);
  if (r.changes !== 1) throw new EcluseError('E_INTERNAL', `user ${name} was not written`);
  return { name, role: role as Role, created_at };
}

export function listUsers(db: Db): User[] {
  return users.all(db, 'SELECT name, role, created_at FROM web_user ORDER BY name');
}

export function removeUser(db: Db, name: string): boolean {
  db.prepare('DELETE FROM web_session WHERE name = ?').run(name);
  return db.prepare('DELETE FROM web_user WHERE name = ?').run(name).changes === 1;
}

const DUMMY_SALT = randomBytes(16);

/** The user when the password is right; null otherwise (in about the same time either way). */
export function checkPassword(db: Db, name: string, password: string): User | null {
  const row = credentials.get(db, 'SELECT name, role, salt, hash, created_at FROM web_user WHERE name = ?', name);
  const got = hashPassword(password, row ? Buffer.from(row.salt, 'hex') : DUMMY_SALT);
  if (!row) return null;
  const want = Buffer.from(row.hash, 'hex');
  return want.length === got.length && timingSafeEqual(want, got)
    ? { name: row.name, role: row.role, created_at: row.created_at }
    : null;
}

const sessionHash = (id: string) => createHash('sha256').update(id).digest('hex');

export function createSession(db: Db, name: string, now = new Date()): string {
  const id = randomBytes(32).toString('base64url');
  db.prepare('DELETE FROM web_session WHERE expires_at < ?').run(now.toISOString());
  db.prepare('INSERT INTO web_session (id_hash, name, created_at, expires_at) VALUES (?, ?, ?, ?)').run(
    sessionHash(id),
    name,
    now.toISOString(),
    new Date(now.getTime() + SESSION_MS).toISOString(),
  );
  return id;
}

export function sessionUser(db: Db, id: string, now = new Date()): User | null {
  const r = users.get(
    db,
    `SELECT u.name, u.role, u.created_at FROM web_session s JOIN web_user u ON u.name = s.name
     WHERE s.id_hash = ? AND s.expires_at > ?`,
    sessionHash(id),
    now.toISOString(),
  );
  return r ?? null;
}

export function endSession(db: Db, id: string): void {
  db.prepare('DELETE FROM web_session WHERE id_hash = ?').run(sessionHash(id));
}

/** Failed logins per key (client address, account) in a sliding window. In memory: a restart forgets. */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();
  constructor(
    private readonly max = 5,
    private readonly windowMs = 15 * 60_000,
  ) {}

  blocked(keys: string[], now = Date.now()): boolean {
    return keys.some((k) => this.recent(k, now).length >= this.max);
  }

  fail(keys: string[], now = Date.now()): void {
    if (this.failures.size > 10_000) {
      for (const [k] of this.failures) if (this.recent(k, now).length === 0) this.failures.delete(k);
    }
    for (const k of keys) this.failures.set(k, [...this.recent(k, now), now]);
  }

  reset(keys: string[]): void {
    for (const k of keys) this.failures.delete(k);
  }

  private recent(k: string, now: number): number[] {
    return (this.failures.get(k) ?? []).filter((t) => now - t < this.windowMs);
  }
}
