/**
 * `relay add` and `export` load only what they run (issue 15: every module loaded is CPU time before the first byte
 * moves; the whole command tree cost about 0.45 CPU-seconds of each invocation). The CLI is run with an ESM resolve
 * hook that logs every module it resolves, and the log must hold the modules each command needs and none of those it
 * does not: feeds, OCI images and receipts for `relay add`; feeds, receipt and revocation verification (without a
 * revocation list in the key folder), the key ceremony and @sigstore/sign's network clients for `export`.
 *
 * Run on tsc's output module by module (dist/cli/main.js), where each module is a file; the shipped bundle
 * (dist/ecluse/) keeps these boundaries because esbuild splits at every dynamic import (test/scripts/bundle.test.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loggedUrls, resolveLogger } from '../helpers/resolve-log.js';
import { ecluse, makeKeys, mediaDir, tmpDir, UNBUNDLED_CLI, type Keys } from '../helpers/world.js';

let root: string;
let keys: Keys;
let logging: (log: string) => Record<string, string>;

beforeAll(async () => {
  root = tmpDir('ecluse-startup-');
  keys = await makeKeys(path.join(root, 'keys'), ['alice']);
  logging = resolveLogger(root);
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Runs the CLI with the hook; returns the modules it resolved (paths under dist/ and package names). */
async function loadedBy(args: string[], home: string): Promise<string[]> {
  const log = path.join(root, `loaded-${args[0]}-${Date.now()}.txt`);
  const r = await ecluse(args, { cli: UNBUNDLED_CLI, home, env: logging(log) });
  expect(r.code, r.stderr).toBe(0);
  return [
    ...new Set(
      loggedUrls(log).map((u) =>
        u.includes('/node_modules/') ? u.replace(/^.*\/node_modules\//, '') : u.replace(/^.*\/dist\//, 'dist/'),
      ),
    ),
  ];
}

describe('relay add and export load what they run', () => {
  const home = () => path.join(root, 'outside');

  it('relay add: the catalog, the hashing and the statement schema; no feeds, images, receipts, keys or signing', async () => {
    const file = path.join(root, 'disk.raw');
    fs.writeFileSync(file, Buffer.alloc(300 * 1024, 7));
    const loaded = await loadedBy(['relay', 'add', file, '--name', 'disk', '--version', '1'], home());
    for (const needed of ['dist/relay/add.js', 'dist/relay/catalog.js', 'dist/sneakernet/digests.js']) {
      expect(loaded, needed).toContain(needed);
    }
    const unwanted = loaded.filter((m) =>
      /^dist\/(relay\/(feeds|images|receipts)\/|keys\/|relay\/export)|^@sigstore\/|^node-forge|^yaml|^picomatch|^tar-stream/.test(
        m,
      ),
    );
    expect(unwanted).toEqual([]);
  });

  it('export: the plan, the writer and the signer; no feeds, no receipt or revocation verifier, no certificate issuing, only the DSSE bundler of @sigstore/sign', async () => {
    const loaded = await loadedBy(
      ['export', '--to', mediaDir(path.join(root, 'media')), '--site', 'paris', '--signer', keys.signer('alice')],
      home(),
    );
    for (const needed of ['dist/relay/write-bundle.js', 'dist/keys/signer.js', '@sigstore/sign/dist/bundler/dsse.js']) {
      expect(loaded, needed).toContain(needed);
    }
    const unwanted = loaded.filter((m) =>
      /^dist\/relay\/feeds\/|^dist\/relay\/images\/(add-image|fetch-image|skopeo)|^dist\/relay\/receipts\/receipts\.js|^dist\/keys\/(ceremony|issue|revocation|root-rotation)\.js|^@sigstore\/sign\/dist\/index\.js|^@sigstore\/verify|^node-forge|^tar-stream/.test(
        m,
      ),
    );
    expect(unwanted).toEqual([]);
  });
});
