/**
 * The audit web view in a real browser (Debian's chromium driven by playwright-core): a good and a hostile bundle are
 * imported through the CLI, `ecluse serve` runs with logins required, and the browser logs in, filters the timeline
 * to refusals, opens the refused bundle's page and finds the failed check and its reason, then logs out.
 * Screenshots of every page land in test-results/web/. Then the morning overview, the refused bundle's page and a
 * media page at 1280×900 and 390×844: no word broken mid-word at 1280 px, sizes in KiB, titles from the statement.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';
import {
  auditSince,
  bundleOn,
  CLI,
  ecluseOk,
  flipByte,
  PASSPHRASE,
  REPO,
  world,
  type World,
} from '../helpers/world.js';

const SHOTS = path.join(REPO, 'test-results', 'web');
const PASSWORD = 'a long auditor password';
let w: World;
let serve: ChildProcess;
let base: string;
let browser: Browser;
let refusedBundle: string;

async function startServe(home: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [CLI, 'serve', '--listen', '127.0.0.1:0'], {
    env: { ...process.env, ECLUSE_HOME: home, ECLUSE_PASSPHRASE: PASSPHRASE, ECLUSE_WEB_LOGIN: 'always' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 20_000);
    proc.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /on (http:\/\/\S+)/.exec(err);
      if (m?.[1]) {
        clearTimeout(t);
        resolve(m[1]);
      }
    });
    proc.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
  return { proc, url };
}

const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

beforeAll(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  w = await world();
  await w.addImage('debian-13', '20261101', 48 * 1024);
  const good = w.path('good');
  await w.exportTo(good);
  await w.addImage('debian-13', '20261201', 48 * 1024);
  const hostile = w.path('hostile');
  await w.exportTo(hostile);
  refusedBundle = bundleOn(hostile).id;
  flipByte(bundleOn(hostile).volume(1), 4096);
  expect((await w.importJson(good)).code).toBe(0);
  expect((await w.importJson(hostile)).code).toBe(1);
  await ecluseOk(['user', 'add', 'claire', '--role', 'auditor', '--json'], {
    home: w.inside,
    env: { ECLUSE_USER_PASSWORD: PASSWORD },
  });
  const s = await startServe(w.inside);
  serve = s.proc;
  base = s.url;
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  serve?.kill('SIGTERM');
  w?.cleanup();
});

describe('audit web view in chromium', () => {
  it('log in, filter to refusals, open the refused bundle, see the failed check and its reason, log out', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });

    await page.goto(`${base}/audit/`);
    expect(new URL(page.url()).pathname).toBe('/audit/login');
    await shot(page, '01-login');

    await page.fill('input[name=name]', 'claire');
    await page.fill('input[name=password]', 'not the password');
    await page.click('#login');
    await expect.poll(() => page.locator('#login-error').textContent()).toContain('Wrong account or password');

    await page.fill('input[name=password]', PASSWORD);
    await page.click('#login');
    await page.waitForURL(`${base}/audit/`);
    expect(await page.locator('header .who').textContent()).toContain('claire');
    expect(await page.locator('tr[data-seq]').count()).toBeGreaterThan(5);
    await shot(page, '02-timeline');

    await page.selectOption('#f-outcome', 'refused');
    await page.click('#apply');
    await page.waitForURL(/outcome=refused/);
    const rows = page.locator('tr[data-seq]');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-outcome')).toBe('refused');
    expect(await rows.first().textContent()).toContain('E_DIGEST');
    await shot(page, '03-refusals');

    await rows.first().locator('a[href^="/audit/bundle/"]').click();
    await page.waitForURL(new RegExp(`/audit/bundle/${refusedBundle}`));
    const failed = page.locator('#checks tr[data-outcome="fail"]');
    expect(await failed.count()).toBe(1);
    const failedText = (await failed.textContent()) ?? '';
    expect(failedText).toContain('E_DIGEST');
    expect(failedText).toMatch(/does not match/);
    expect(await page.locator('#checks tr[data-outcome="pass"]').count()).toBeGreaterThan(0);
    expect(await page.locator('#decision').textContent()).toContain('refused');
    await shot(page, '04-bundle-refused');

    await page.goto(`${base}/audit/artifact/debian-13`);
    expect(await page.locator('#versions tbody tr').count()).toBe(1);
    await shot(page, '05-artifact');
    await page.goto(`${base}/audit/media`);
    await page.locator('main a[href^="/audit/media/view"]').first().click();
    expect(await page.locator('#carried li').count()).toBeGreaterThanOrEqual(1);
    await shot(page, '06-media');
    await page.goto(`${base}/audit/log`);
    expect(await page.locator('#verification h2').textContent()).toBe('The log is intact');
    await shot(page, '07-log');

    // printed: navigation and filters hidden
    await page.emulateMedia({ media: 'print' });
    expect(await page.locator('header nav').isVisible()).toBe(false);
    await shot(page, '07b-log-print');
    await page.emulateMedia({ media: 'screen' });

    // a phone-sized screen
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/audit/`);
    // A string, evaluated in the page: the DOM's types are not part of this Node project.
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(1);
    await shot(page, '08-timeline-phone');
    await page.setViewportSize({ width: 1280, height: 900 });

    await page.click('#logout');
    await page.waitForURL(/\/audit\/login/);
    await page.goto(`${base}/audit/`);
    expect(new URL(page.url()).pathname).toBe('/audit/login');
    await shot(page, '09-logged-out');
    // the one 401 of the wrong password is expected; nothing else (no CSP violation, no failed resource)
    expect(errors.filter((e) => !/status of 401/.test(e))).toEqual([]);
    await ctx.close();

    const web = auditSince(w.inside).filter((a) => a.kind.startsWith('web.'));
    expect(web.map((a) => `${a.kind}:${a.outcome}`)).toEqual(['web.login:fail', 'web.login:pass', 'web.logout:info']);
    await ecluseOk(['audit', 'verify', '--json'], { home: w.inside });
  });

  it('the overview, a refused bundle and a media page read well at 1280×900 and 390×844', async () => {
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${base}/audit/`);
    await page.fill('input[name=name]', 'claire');
    await page.fill('input[name=password]', PASSWORD);
    await page.click('#login');
    await page.waitForURL(`${base}/audit/`);

    // Words broken in two by the layout (hashes, ids and paths in .mono may wrap anywhere; a hyphen is a break).
    // Runs in Chromium, given as source text: the DOM's types are not the tests' (Node's) types.
    const brokenWords = () =>
      page.evaluate<string[]>(String.raw`(() => {
        const broken = [];
        for (const cell of document.querySelectorAll(
          'main td, main th, main h1, main h2, main h3, main dt, main dd, main li, main p',
        )) {
          const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
          for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            if (n.parentElement?.closest('.mono, code')) continue;
            const text = n.textContent ?? '';
            for (const m of text.matchAll(/[^\s\-\u2013\u2014/]+/g)) {
              const r = document.createRange();
              r.setStart(n, m.index);
              r.setEnd(n, m.index + m[0].length);
              const tops = new Set([...r.getClientRects()].filter((x) => x.width > 0).map((x) => Math.round(x.top)));
              if (tops.size > 1) broken.push(m[0]);
            }
          }
        }
        return broken;
      })()`);
    const pages: Array<[string, string]> = [
      ['overview', `${base}/audit/`],
      ['bundle-refused', `${base}/audit/bundle/${refusedBundle}`],
    ];
    await page.goto(`${base}/audit/media`);
    const mediaHref = await page.locator('main a[href^="/audit/media/view"]').first().getAttribute('href');
    pages.push(['media', `${base}${mediaHref}`]);

    for (const [name, url] of pages) {
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(url);
      expect(await brokenWords(), `${name} at 1280 px`).toEqual([]);
      await shot(page, `10-${name}-1280`);
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(url);
      const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
      expect(overflow, `${name} at 390 px`).toBeLessThanOrEqual(1);
      await shot(page, `11-${name}-390`);
    }

    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${base}/audit/`);
    const overview = (await page.locator('#overview').textContent()) ?? '';
    expect(overview.replace(/\s+/g, ' ')).toMatch(/1 bundle\(s\) imported, 1 refused/);
    expect(overview).toContain('What to do:');
    // The refusal's next step is the CLI's (verifier/refusal.ts), said once: under "What to do", not twice.
    expect(overview.replace(/\s+/g, ' ')).toMatch(
      /What to do: export it again outside: ecluse export --resend 2 --site site-alpha --to MEDIA/,
    );
    expect(overview.split('ecluse export --resend 2').length).toBe(2);
    expect(await page.locator('#store').textContent()).toMatch(/48 KiB in 1 image\(s\)[\s\S]*(KiB|MiB|GiB|TiB) free/);
    expect(await page.locator('#integrity').textContent()).toMatch(/Intact: \d+ events/);
    expect(await page.locator('input[name=from]').getAttribute('placeholder')).toBe('YYYY-MM-DD');
    expect(await page.locator('input[name=from]').inputValue()).toBe('');
    expect(await page.locator('script').count()).toBe(0);

    await page.goto(`${base}/audit/bundle/${refusedBundle}`);
    expect(await page.title()).toMatch(/^Bundle \S+ #2 \(refused\)/);
    await page.goto(pages[2]?.[1] as string);
    expect(await page.locator('main').textContent()).not.toMatch(/\{"/);
    await ctx.close();
  });
});
