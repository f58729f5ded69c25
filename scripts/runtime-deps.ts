/**
 * What of node_modules the bundled program needs at run time: the packages scripts/bundle.ts leaves outside the
 * bundle (RUNTIME_PACKAGES) and, transitively, what they depend on. packaging/build-deb.sh runs this on the staged
 * /usr/lib/ecluse after `npm ci --omit=dev` and removes everything else (express, zod, @sigstore/*, … are inside the
 * bundle already).
 *
 * The closure is npm's own: `npm query '#name, #name *'` for each package (npm's dependency graph of the installed
 * tree, the same one `npm ci` built: dependencies, optional and peer ones that are installed, nested copies where npm
 * put them), run in DIR.
 *
 * Usage: node dist/scripts/runtime-deps.js list|prune DIR   (DIR holds node_modules/)
 *   list    prints the kept packages, one path relative to DIR a line
 *   prune   removes every other package from DIR/node_modules (and the .bin/ links)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RUNTIME_PACKAGES } from './bundle.js';

/** The folders (absolute) of the packages the program loads at run time under `root`, and of their dependencies. */
export function runtimeClosure(root: string, packages: readonly string[] = RUNTIME_PACKAGES): Set<string> {
  root = path.resolve(root);
  const selector = packages.flatMap((p) => [`#${p}`, `#${p} *`]).join(', ');
  const out = execFileSync('npm', ['query', selector], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  const found = JSON.parse(out) as Array<{ name?: string; location?: string }>;
  const kept = new Set(found.map((n) => path.join(root, n.location ?? '')));
  for (const p of packages) {
    if (!found.some((n) => n.name === p)) throw new Error(`runtime-deps: ${p} is not installed under ${root}`);
  }
  return kept;
}

/** Removes from `nodeModules` every package folder not in `kept`, descending into the kept ones; returns the count. */
function prune(nodeModules: string, kept: Set<string>): number {
  let removed = 0;
  for (const entry of fs.readdirSync(nodeModules)) {
    const p = path.join(nodeModules, entry);
    if (entry === '.bin' || entry.startsWith('.')) {
      fs.rmSync(p, { recursive: true, force: true });
    } else if (entry.startsWith('@')) {
      removed += prune(p, kept);
      if (fs.readdirSync(p).length === 0) fs.rmdirSync(p);
    } else if (kept.has(p)) {
      const nested = path.join(p, 'node_modules');
      if (fs.existsSync(nested)) {
        removed += prune(nested, kept);
        if (fs.readdirSync(nested).length === 0) fs.rmdirSync(nested);
      }
    } else {
      fs.rmSync(p, { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

function main(): void {
  const [command, dir] = process.argv.slice(2);
  if ((command !== 'list' && command !== 'prune') || !dir) {
    console.error('usage: runtime-deps.js list|prune DIR');
    process.exit(2);
  }
  const root = path.resolve(dir);
  const kept = runtimeClosure(root);
  if (command === 'list') {
    for (const k of [...kept].map((k) => path.relative(root, k)).sort()) console.log(k);
    return;
  }
  const removed = prune(path.join(root, 'node_modules'), kept);
  console.error(`runtime-deps: kept ${kept.size} packages, removed ${removed}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
