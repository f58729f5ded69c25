/**
 * `npm run build`'s second step: the `ecluse` program as the station runs it, bundled by esbuild from tsc's output
 * (dist/) into dist/ecluse/: `main.js` (the CLI), the two worker scripts beside it (`hash-worker.js`,
 * `verify-worker.js`: sneakernet/digests.ts and verifier/web/verification.ts look for them beside the code that starts
 * them), and the chunks the CLI's lazily loaded commands share.
 *
 * Why: an `ecluse import` of a 4 KiB image resolved, read and compiled 332 modules (2.3 MB of JavaScript) before its
 * first byte, ~0.1 s and ~12 MiB of its peak RSS (issue 15, measured; README, Benchmark). One file per lazily loaded
 * command keeps the laziness: esbuild splits at every dynamic `import()`.
 *
 * Left outside the bundle, loaded from node_modules at run time: the native addons (better-sqlite3, usb, unix-dgram),
 * the FastCDC WebAssembly (relay/delta.ts; it reads its .wasm file from beside itself)
 * and the packages the code loads on demand with `createRequire` (node-forge's PSS alone, yaml, cli-progress), which
 * esbuild could not follow anyway. Names are kept (whitespace and syntax minified only): error classes and stack
 * traces stay readable, and the linked source maps lead back to the TypeScript (`node --enable-source-maps`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(dist, 'ecluse');

/** Loaded at run time from node_modules: native addons, and what the code requires on demand. */
export const RUNTIME_PACKAGES = [
  'better-sqlite3',
  'usb',
  'unix-dgram',
  '@dstanesc/wasm-chunking-fastcdc-node',
  'node-forge',
  'yaml',
  'cli-progress',
];

async function main(): Promise<void> {
  fs.rmSync(out, { recursive: true, force: true });
  const result = await build({
    entryPoints: {
      main: path.join(dist, 'cli', 'main.js'),
      'hash-worker': path.join(dist, 'sneakernet', 'hash-worker.js'),
      'verify-worker': path.join(dist, 'verifier', 'web', 'verify-worker.js'),
    },
    outdir: out,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: RUNTIME_PACKAGES,
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: 'linked',
    // The CommonJS packages bundled here (express and its dependencies) call require() for Node's own modules.
    banner: {
      js: "import { createRequire as __ecluseRequire } from 'node:module';const require=__ecluseRequire(import.meta.url);",
    },
    logLevel: 'warning',
    metafile: true,
  });
  if (result.errors.length > 0) process.exit(1);
  fs.chmodSync(path.join(out, 'main.js'), 0o755);
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  const files = Object.keys(result.metafile.outputs).filter((f) => f.endsWith('.js')).length;
  console.log(`bundled dist/ecluse/: ${files} files, ${(bytes / 1024).toFixed(0)} KiB (source maps included)`);
}

// Run as a script (npm run build); imported by its test for RUNTIME_PACKAGES alone.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
