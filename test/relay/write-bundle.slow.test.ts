/**
 * Running out of space while a bundle is being written (the plan saw enough room; then something else filled the
 * medium) is E_NO_SPACE, and nothing half-written stays: no `.partial-*`, no bundle folder, nothing recorded in the
 * site's chain. A real tmpfs (needs root), a real relay home and a real signer.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initKeys } from '../../keys/ceremony.js';
import { loadSigner, type LoadedSigner } from '../../keys/signer.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { addArtifact } from '../../relay/add.js';
import { openRelayHome, type RelayHome } from '../../relay/catalog.js';
import { chainOf } from '../../relay/chains.js';
import { planExport, writeBundle } from '../../relay/export.js';

let root: string;
let stick: string;
let home: RelayHome;
let signer: LoadedSigner;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-enospc-'));
  stick = path.join(root, 'stick');
  fs.mkdirSync(stick);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', stick]);
  await initKeys({ out: path.join(root, 'keys'), signers: ['alice'], passphrase: null });
  signer = await loadSigner(path.join(root, 'keys', 'signers', 'alice'), () => Promise.resolve(null));
  home = openRelayHome(path.join(root, 'home'));
  const file = path.join(root, 'image');
  fs.writeFileSync(file, randomBytes(5 * 1024 * 1024));
  await addArtifact(home, {
    file,
    name: 'img',
    version: '1',
    diskFormat: 'raw',
    containerFormat: 'bare',
    properties: {},
    vendor: null,
  });
});
afterAll(() => {
  home.db.close();
  execFileSync('umount', [stick]);
  fs.rmSync(root, { recursive: true, force: true });
});

describe('writeBundle on a medium that fills up while writing', () => {
  it('is E_NO_SPACE and leaves nothing behind', async () => {
    const prepared = await planExport(home, {
      mode: { kind: 'fresh' },
      site: 'site-a',
      media: [stick],
      mediaBytes: 8 * 1024 * 1024,
      signers: 1,
      expiresInMs: 86_400_000,
      all: false,
      force: false,
      includeRefused: false,
      noEvidence: false,
      noDelta: false,
    });
    expect(prepared.plan.refusal).toBeNull();
    let filled = false;
    const error = await writeBundle(home, prepared, [signer], {
      onProgress: () => {
        if (filled) return;
        filled = true;
        // Another writer takes all but 1 MiB of what is left.
        const s = fs.statfsSync(stick);
        fs.writeFileSync(path.join(stick, 'someone-else'), Buffer.alloc(s.bavail * s.bsize - 1024 * 1024));
      },
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(filled).toBe(true);
    expect(error).toBeInstanceOf(EcluseError);
    expect((error as EcluseError).code).toBe('E_NO_SPACE');
    expect((error as EcluseError).message).toContain(stick);
    expect(fs.readdirSync(path.join(stick, 'ecluse', 'bundles'))).toEqual([]);
    expect(chainOf(home.db, 'site-a')).toEqual([]);
  });
});
