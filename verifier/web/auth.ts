/**
 * Who may read the audit web view. Loopback clients are let in as the local operator (unless
 * `ECLUSE_WEB_LOGIN=always`, or the request was forwarded by a proxy); anyone else needs a session (login form, `ecluse user add`) or an API token in
 * `X-Auth-Token` (`ecluse token create`). Sessions are cookies `HttpOnly; Secure; SameSite=Strict; Path=/audit`.
 * Every login, failed login, throttled login and logout is audited; failures are rate-limited per address and account.
 */
import express from 'express';
import { appendAudit } from '../audit.js';
import type { Db } from '../db.js';
import { tokenRole } from '../glance/auth.js';
import { checkPassword, createSession, endSession, LoginLimiter, SESSION_MS, sessionUser } from './accounts.js';
import { html, type PageUser } from './html.js';

export const COOKIE = 'ecluse_session';

export function isLoopbackAddress(a: string | undefined): boolean {
  if (!a) return false;
  return a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');
}

export function cookieValue(req: express.Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}

const loopbackAllowed = () => process.env.ECLUSE_WEB_LOGIN !== 'always';

export function userOf(res: express.Response): PageUser {
  return res.locals.auditUser as PageUser;
}

export function requireUser(db: Db): express.RequestHandler {
  return (req, res, next) => {
    const sid = cookieValue(req, COOKIE);
    const u = sid ? sessionUser(db, sid) : null;
    if (u) {
      res.locals.auditUser = { name: u.name, role: u.role, via: 'session' } satisfies PageUser;
      return next();
    }
    const token = req.get('x-auth-token');
    const t = token ? tokenRole(db, token) : undefined;
    if (t) {
      res.locals.auditUser = { name: `token ${t.id.slice(0, 8)}`, role: t.role, via: 'token' } satisfies PageUser;
      return next();
    }
    // A reverse proxy on the station makes every client look local: a forwarded request is never "loopback".
    const forwarded = req.get('forwarded') !== undefined || req.get('x-forwarded-for') !== undefined;
    if (loopbackAllowed() && !forwarded && isLoopbackAddress(req.socket.remoteAddress)) {
      res.locals.auditUser = { name: 'local', role: 'operator', via: 'loopback' } satisfies PageUser;
      return next();
    }
    if (req.method === 'GET' && req.accepts('html')) {
      return res.redirect(303, `/audit/login?next=${encodeURIComponent(req.originalUrl)}`);
    }
    res.status(401).type('text/plain').send('E_AUTH: log in first (or send X-Auth-Token)\n');
  };
}

function loginForm(o: { next: string; error?: string; name?: string }): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>Log in · écluse audit</title>
        <link rel="stylesheet" href="/audit/style.css" />
      </head>
      <body>
        <main class="login">
          <h1>écluse audit: log in</h1>
          ${o.error ? html`<p class="error" id="login-error">${o.error}</p>` : ''}
          <form method="post" action="/audit/login">
            <input type="hidden" name="next" value="${o.next}" />
            <label>Account<input name="name" autocomplete="username" required value="${o.name ?? ''}" /></label>
            <label>Password<input name="password" type="password" autocomplete="current-password" required /></label>
            <button type="submit" id="login">Log in</button>
          </form>
          <p class="muted">Accounts are made on the station with <code>ecluse user add NAME --role auditor</code>.</p>
        </main>
      </body>
    </html>`.text;
}

const safeNext = (n: unknown) =>
  typeof n === 'string' && /^\/audit(\/|$)/.test(n) && !n.startsWith('//') ? n : '/audit/';

export function loginRoutes(db: Db, limiter = new LoginLimiter()): express.Router {
  const r = express.Router();
  const form = express.urlencoded({ extended: false, limit: '4kb', parameterLimit: 10 });
  r.get('/login', (req, res) => {
    const next = new URL(req.originalUrl, 'http://x').searchParams.get('next');
    res.type('html').send(loginForm({ next: safeNext(next) }));
  });
  r.post('/login', form, (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const name = typeof body.name === 'string' ? body.name.slice(0, 64) : '';
    const password = typeof body.password === 'string' ? body.password.slice(0, 1024) : '';
    const next = safeNext(body.next);
    const addr = req.socket.remoteAddress ?? 'unknown';
    const keys = [`addr:${addr}`, `name:${name}`];
    if (limiter.blocked(keys)) {
      appendAudit(db, {
        kind: 'web.login',
        outcome: 'fail',
        code: 'E_RATE_LIMITED',
        message: `login as ${name} from ${addr} throttled: too many failures`,
        details: { name, address: addr },
      });
      res
        .status(429)
        .set('Retry-After', '900')
        .type('html')
        .send(loginForm({ next, name, error: 'Too many failed logins: wait 15 minutes.' }));
      return;
    }
    const u = name && password ? checkPassword(db, name, password) : null;
    if (!u) {
      limiter.fail(keys);
      appendAudit(db, {
        kind: 'web.login',
        outcome: 'fail',
        code: 'E_AUTH',
        message: `failed login as ${name || '(empty)'} from ${addr}`,
        details: { name, address: addr },
      });
      res
        .status(401)
        .type('html')
        .send(loginForm({ next, name, error: 'Wrong account or password.' }));
      return;
    }
    limiter.reset([`name:${name}`]);
    const sid = createSession(db, u.name);
    appendAudit(db, {
      kind: 'web.login',
      outcome: 'pass',
      message: `${u.name} (${u.role}) logged in from ${addr}`,
      details: { name: u.name, role: u.role, address: addr },
    });
    res.setHeader(
      'Set-Cookie',
      `${COOKIE}=${sid}; HttpOnly; Secure; SameSite=Strict; Path=/audit; Max-Age=${SESSION_MS / 1000}`,
    );
    res.redirect(303, next);
  });
  r.post('/logout', (req, res) => {
    const sid = cookieValue(req, COOKIE);
    const u = sid ? sessionUser(db, sid) : null;
    if (sid) endSession(db, sid);
    if (u)
      appendAudit(db, {
        kind: 'web.logout',
        outcome: 'info',
        message: `${u.name} logged out`,
        details: { name: u.name },
      });
    res.setHeader('Set-Cookie', `${COOKIE}=; HttpOnly; Secure; SameSite=Strict; Path=/audit; Max-Age=0`);
    res.redirect(303, '/audit/login');
  });
  return r;
}
