/**
 * The program as it ships is esbuild's bundle of tsc's output (scripts/bundle.ts, `npm run build`): dist/ecluse/
 * holds the CLI, its two worker scripts and the chunks of its lazily loaded commands. What the bundle promises:
 * an executable entry with its `#!`, the workers beside the code that starts them, nothing loaded from node_modules
 * at run time but the packages kept outside on purpose, and the lazy command boundaries kept (one chunk per
 * dynamically imported command).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUNTIME_PACKAGES } from '../../scripts/bundle.js';
import { loggedUrls, resolveLogger } from '../helpers/resolve-log.js';
import { CLI, ecluse, ecluseOk, REPO, world, type World } from '../helpers/world.js';

const bundle = path.join(REPO, 'dist', 'ecluse');
let w: World;
let logging: (log: string) => Record<string, string>;

beforeAll(async () => {
  w = await world();
  logging = resolveLogger(w.root);
}, 60_000);
afterAll(() => w.cleanup());

/** The files an `ecluse ARGS` run resolved through the ESM loader, relative to the repository. */
async function resolvedBy(args: string[], home: string): Promise<string[]> {
  const log = w.path(`loaded-${args[0]}-${Date.now()}.txt`);
  const r = await ecluse(args, { home, env: logging(log) });
  expect(r.code, r.stderr).toBe(0);
  return [...new Set(loggedUrls(log).map((u) => path.relative(REPO, new URL(u).pathname)))];
}

describe('the shipped bundle (dist/ecluse/)', () => {
  it('is an executable entry with its #!, the workers beside it and the chunks of the lazy commands', () => {
    expect(CLI).toBe(path.join(bundle, 'main.js'));
    expect(fs.readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(fs.statSync(CLI).mode & 0o111).toBe(0o111);
    for (const worker of ['hash-worker.js', 'verify-worker.js'])
      expect(fs.existsSync(path.join(bundle, worker))).toBe(true);
    // cli/main.ts loads each command's module with import(): esbuild keeps each in a chunk of its own.
    const chunks = fs.readdirSync(bundle).filter((f) => f.endsWith('.js'));
    expect(chunks.length).toBeGreaterThan(10);
  });

  it('an import loads nothing from node_modules but the packages kept outside the bundle', async () => {
    await w.addImage('disk', '1', 300 * 1024);
    const media = w.path('media');
    await w.exportTo(media);
    const loaded = await resolvedBy(['import', media, '--json'], w.inside);
    const fromPackages = loaded.filter((f) => f.includes('node_modules/'));
    const outside = fromPackages.filter((f) => !RUNTIME_PACKAGES.some((p) => f.includes(`node_modules/${p}/`)));
    expect(outside).toEqual([]);
    expect(loaded.filter((f) => !f.includes('node_modules/') && !f.startsWith('dist/ecluse/'))).toEqual([]);
    expect(loaded).toContain('dist/ecluse/main.js');
    // The catalog's SQLite is one of them: the native addon is loaded, not bundled.
    expect(fromPackages.some((f) => f.includes('node_modules/better-sqlite3/'))).toBe(true);
    const listed = await ecluseOk(['image', 'list', '--json'], { home: w.inside });
    expect(listed.stdout).toContain('disk');
  }, 120_000);

  it('a command loads its own chunk and not the others: relay add resolves fewer files than export', async () => {
    const file = w.path('second.raw');
    fs.writeFileSync(file, Buffer.alloc(64 * 1024, 3));
    const added = await resolvedBy(['relay', 'add', file, '--name', 'second', '--version', '1'], w.outside);
    const all = fs.readdirSync(bundle).filter((f) => f.endsWith('.js'));
    expect(added.length).toBeLessThan(all.length / 2);
    expect(added.some((f) => f.includes('node_modules/node-forge/'))).toBe(false);
  }, 60_000);
});
