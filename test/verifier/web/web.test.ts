/**
 * The audit web view as a component: an express app with only the /audit router over a temporary station database.
 * Headers, escaping, filters and keyset pagination, downloads, login with rate limiting, all audited.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../../verifier/audit.js';
import { openDb, setSetting, type Db } from '../../../verifier/db.js';
import { addUser } from '../../../verifier/web/accounts.js';
import { csvCell } from '../../../verifier/web/downloads.js';
import { auditWebRouter } from '../../../verifier/web/router.js';

let dir: string;
let db: Db;
let server: http.Server;
let base: string;

async function get(p: string, headers: Record<string, string> = {}) {
  const r = await fetch(base + p, { headers, redirect: 'manual' });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

async function post(p: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const r = await fetch(base + p, {
    method: 'POST',
    body: new URLSearchParams(form),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    redirect: 'manual',
  });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-web-'));
  db = openDb(dir);
  setSetting(db, 'site_id', 'web-test');
  for (let i = 0; i < 120; i++) {
    appendAudit(db, {
      kind: i % 10 === 9 ? 'import.refused' : 'check.digests',
      outcome: i % 10 === 9 ? 'refused' : 'pass',
      code: i % 10 === 9 ? 'E_DIGEST' : null,
      message: i === 7 ? '<script>alert(1)</script> =cmd' : `event ${i}`,
      bundleId: `b-${Math.floor(i / 10)}`,
      media: '/media/usb0',
      artifact: 'debian@1.0',
    });
  }
  addUser(db, 'claire', 'auditor', 'correct horse battery');
  const app = express();
  app.use('/audit', auditWebRouter({ db, checkpointEveryMs: 0 }));
  server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  delete process.env.ECLUSE_WEB_LOGIN;
});

describe('audit web view', () => {
  it('serves the timeline with security headers and escapes every value', async () => {
    const r = await get('/audit/');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toContain("script-src 'none'");
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    expect(r.text).not.toContain('<script>');
    expect(r.text.match(/<tr data-seq/g)).toHaveLength(50);
  });

  it('filters by outcome and pages with keyset links down to the end', async () => {
    const r = await get('/audit/?outcome=refused');
    expect(r.text.match(/<tr data-seq/g)).toHaveLength(12);
    expect(r.text).not.toContain('data-outcome="pass"');
    let page = await get('/audit/');
    const seen: number[] = [];
    for (;;) {
      seen.push(...[...page.text.matchAll(/data-seq="(\d+)"/g)].map((m) => Number(m[1])));
      const older = /href="(\/audit\/\?before=\d+)" id="older"/.exec(page.text);
      if (!older?.[1]) break;
      page = await get(older[1].replace(/&amp;/g, '&'));
    }
    expect(seen.length).toBe(120);
    expect(new Set(seen).size).toBe(120);
  });

  it('shows a bundle page with the failed check and its reason, and 404s unknown ones', async () => {
    const r = await get('/audit/bundle/b-3');
    expect(r.status).toBe(200);
    expect(r.text).toContain('E_DIGEST');
    expect((await get('/audit/bundle/nope')).status).toBe(404);
  });

  it('downloads JSON Lines and CSV (formula cells neutralised)', async () => {
    const j = await get('/audit/events.jsonl?outcome=refused');
    const lines = j.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { outcome: string });
    expect(lines).toHaveLength(12);
    expect(lines.every((l) => l.outcome === 'refused')).toBe(true);
    const c = await get('/audit/events.csv');
    expect(c.text.split('\r\n')[0]).toBe('seq,at,kind,outcome,code,message,bundle_id,station,artifact,media,details');
    expect(csvCell('=SUM(A1)')).toBe("'=SUM(A1)");
    expect(csvCell('a,"b"')).toBe('"a,""b"""');
  });

  it('is read-only', async () => {
    const r = await fetch(`${base}/audit/`, { method: 'DELETE' });
    expect(r.status).toBe(405);
  });

  it('requires a login beyond loopback; logins are audited and rate-limited', async () => {
    process.env.ECLUSE_WEB_LOGIN = 'always';
    const r = await get('/audit/');
    expect(r.status).toBe(303);
    delete process.env.ECLUSE_WEB_LOGIN;
    // behind a reverse proxy on the station, a client is not local
    expect((await get('/audit/', { 'x-forwarded-for': '10.0.0.9' })).status).toBe(303);
    expect((await get('/audit/')).status).toBe(200);
    process.env.ECLUSE_WEB_LOGIN = 'always';
    expect(r.headers.get('location')).toMatch(/^\/audit\/login\?next=/);
    const bad = await post('/audit/login', { name: 'claire', password: 'wrong password!' });
    expect(bad.status).toBe(401);
    const ok = await post('/audit/login', { name: 'claire', password: 'correct horse battery', next: '/audit/log' });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/audit/log');
    const cookie = ok.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/HttpOnly; Secure; SameSite=Strict; Path=\/audit/);
    const sid = cookie.split(';')[0] as string;
    const page = await get('/audit/', { cookie: sid });
    expect(page.status).toBe(200);
    expect(page.text).toContain('claire');
    const out = await post('/audit/logout', {}, { cookie: sid });
    expect(out.status).toBe(303);
    expect((await get('/audit/', { cookie: sid })).status).toBe(303);
    for (let i = 0; i < 5; i++) await post('/audit/login', { name: 'mallory', password: 'guess guess' });
    const throttled = await post('/audit/login', { name: 'mallory', password: 'guess guess' });
    expect(throttled.status).toBe(429);
    const kinds = db.prepare("SELECT outcome, code FROM audit WHERE kind LIKE 'web.%' ORDER BY seq").all() as Array<{
      outcome: string;
      code: string | null;
    }>;
    expect(kinds.filter((k) => k.code === 'E_AUTH').length).toBeGreaterThanOrEqual(5);
    expect(kinds.some((k) => k.code === 'E_RATE_LIMITED')).toBe(true);
    expect(kinds.some((k) => k.outcome === 'pass')).toBe(true);
  });
});

describe('audit web view: other pages', () => {
  it('lists media and shows what each carried; shows the log status', async () => {
    delete process.env.ECLUSE_WEB_LOGIN;
    const list = await get('/audit/media');
    expect(list.status).toBe(200);
    expect(list.text).toContain('/audit/media/view?id=%2Fmedia%2Fusb0');
    const m = await get('/audit/media/view?id=%2Fmedia%2Fusb0');
    expect(m.status).toBe(200);
    expect(m.text).toContain('b-11');
    const log = await get('/audit/log');
    expect(log.text).toContain('The log is intact');
    expect((await get('/audit/artifact/debian')).status).toBe(200);
  });
});
