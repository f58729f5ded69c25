/**
 * Revocation without a visit inside: `keys revoke` signs a list with the root, the next export carries it, and from
 * the moment it arrives (even in a bundle that is itself refused) the import station refuses that key (E_REVOKED).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditSince,
  bundleOn,
  ecluse,
  ecluseOk,
  expectImportRefused,
  makeKeys,
  tmpDir,
  world,
  type Keys,
  type World,
  mediaDir,
} from '../helpers/world.js';

let keys: Keys;
let foreign: Keys;
const roots: string[] = [];

beforeAll(async () => {
  const dir = tmpDir('ecluse-revoke-');
  roots.push(dir);
  [keys, foreign] = await Promise.all([makeKeys(`${dir}/keys`), makeKeys(`${dir}/foreign`)]);
  await ecluseOk(['keys', 'revoke', 'alice', '--keys', keys.dir, '--reason', 'laptop lost']);
});

afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

async function fresh(): Promise<World> {
  const w = await world({ keys });
  roots.push(w.root);
  return w;
}

/** A bundle signed by `signer` from a new export station of its own (its sequence 1). */
async function fromOtherStation(w: World, name: string, signer: string, media: string, site = w.site): Promise<void> {
  const station = w.path(`station-${name}`);
  const file = w.path(`${name}.raw`);
  fs.writeFileSync(file, Buffer.alloc(4096, name.length));
  await ecluseOk(['relay', 'add', file, '--name', name, '--version', '1'], { home: station });
  const r = await ecluse(['export', '--to', mediaDir(media), '--site', site, '--signer', signer], { home: station });
  expect(r.code, r.stderr).toBe(0);
}

describe('revocation', () => {
  it('the export station refuses to sign with a revoked key', async () => {
    const w = await fresh();
    await w.addImage('img', '1', 2048);
    const r = await ecluse(
      ['export', '--to', mediaDir(w.path('m')), '--site', w.site, '--signer', keys.signer('alice'), '--json'],
      {
        home: w.outside,
      },
    );
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, code: 'E_REVOKED' });
  });

  it('the list travels with the next bundle; from then on the revoked key is refused', async () => {
    const w = await fresh();
    await w.addImage('img', '1', 2048);
    await w.exportTo(w.path('m1'), [], { signers: [keys.signer('bob')] });
    expect(fs.existsSync(path.join(bundleOn(w.path('m1')).root, 'trust', 'revocations.sigstore.json'))).toBe(true);
    expect((await w.importJson(w.path('m1'))).json).toMatchObject({ ok: true });
    const accepted = auditSince(w.inside).filter((a) => a.kind === 'trust.revocations');
    expect(accepted).toHaveLength(1);
    // alice's key could still sign outside with an old copy of her key folder: the import station refuses it.
    fs.rmSync(path.join(keys.dir, 'trust', 'revocations.sigstore.json.bak'), { force: true });
    fs.renameSync(
      path.join(keys.dir, 'trust', 'revocations.sigstore.json'),
      path.join(keys.dir, 'trust', 'revocations.sigstore.json.bak'),
    );
    try {
      await fromOtherStation(w, 'other', keys.signer('alice'), w.path('m2'));
    } finally {
      fs.renameSync(
        path.join(keys.dir, 'trust', 'revocations.sigstore.json.bak'),
        path.join(keys.dir, 'trust', 'revocations.sigstore.json'),
      );
    }
    const r = await expectImportRefused(w, w.path('m2'), 'E_REVOKED');
    expect((r.json as { message: string }).message).toContain('signer alice, revoked on');
  });

  it('a list carried by a bundle that is refused still applies', async () => {
    const w = await fresh();
    // A bundle for another site, signed by bob, carrying the list: refused as E_WRONG_SITE, but the list is root-signed.
    await fromOtherStation(w, 'wrongsite', keys.signer('bob'), w.path('m1'), 'other-site');
    await expectImportRefused(w, w.path('m1'), 'E_WRONG_SITE');
    expect(auditSince(w.inside).filter((a) => a.kind === 'trust.revocations')).toHaveLength(1);
  });

  it('a revocation list signed by another root is refused (E_SIGNATURE)', async () => {
    const w = await fresh();
    const foreignKeys = foreign.dir;
    await ecluseOk(['keys', 'revoke', 'bob', '--keys', foreignKeys]);
    await w.addImage('img', '1', 2048);
    await w.exportTo(w.path('m1'), [], { signers: [keys.signer('bob')] });
    const trust = path.join(bundleOn(w.path('m1')).root, 'trust', 'revocations.sigstore.json');
    fs.copyFileSync(path.join(foreignKeys, 'trust', 'revocations.sigstore.json'), trust);
    const r = await expectImportRefused(w, w.path('m1'), 'E_SIGNATURE');
    expect((r.json as { message: string }).message).toContain('revocation list');
  });
});
