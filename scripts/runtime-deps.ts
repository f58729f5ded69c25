/**
 * What of node_modules the bundled program needs at run time: the packages scripts/bundle.ts leaves outside the
 * bundle (RUNTIME_PACKAGES) and, transitively, what they depend on. packaging/build-deb.sh runs this on the staged
 * /usr/lib/ecluse after `npm ci --omit=dev` and removes everything else (express, zod, @sigstore/*, … are inside the
 * bundle already).
 *
 * The closure is read from the installed tree, the way Node resolves: from each kept package, its `dependencies`,
 * `optionalDependencies` and `peerDependencies` are looked up in its own node_modules/ and then in those of the
 * folders above it. An optional or peer dependency that is not installed is skipped (npm left it out for this
 * platform); a missing required one is an error.
 *
 * Usage: node dist/scripts/runtime-deps.js list|prune DIR   (DIR holds node_modules/)
 *   list    prints the kept packages, one path relative to DIR a line
 *   prune   removes every other package from DIR/node_modules (and the .bin/ links)
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { RUNTIME_PACKAGES } from './bundle.js';

interface Manifest {
  name?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

function manifest(dir: string): Manifest {
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;
}

/** Node's lookup of package `name` from the folder `from`, no higher than `root`; null when it is not installed. */
function lookup(name: string, from: string, root: string): string | null {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (path.basename(dir) !== 'node_modules') {
      const candidate = path.join(dir, 'node_modules', name);
      if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    }
    if (dir === root || path.dirname(dir) === dir) return null;
  }
}

/** The folders (absolute) of the packages the program loads at run time under `root`, and of their dependencies. */
export function runtimeClosure(root: string, packages: readonly string[] = RUNTIME_PACKAGES): Set<string> {
  root = path.resolve(root);
  const kept = new Set<string>();
  const queue: string[] = [];
  const want = (name: string, from: string, required: boolean, by: string) => {
    const dir = lookup(name, from, root);
    if (dir === null) {
      if (required) throw new Error(`runtime-deps: ${name} (needed by ${by}) is not installed under ${root}`);
      return;
    }
    if (!kept.has(dir)) {
      kept.add(dir);
      queue.push(dir);
    }
  };
  for (const p of packages) want(p, root, true, 'the program');
  while (queue.length > 0) {
    const dir = queue.shift() as string;
    const m = manifest(dir);
    const by = m.name ?? path.relative(root, dir);
    for (const d of Object.keys(m.dependencies ?? {})) want(d, dir, !(d in (m.optionalDependencies ?? {})), by);
    for (const d of Object.keys(m.optionalDependencies ?? {})) want(d, dir, false, by);
    for (const d of Object.keys(m.peerDependencies ?? {})) want(d, dir, false, by);
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
