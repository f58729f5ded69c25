/**
 * Root rotation as TUF does it: `keys rotate-root` announces root N+1 signed by root N and by itself; every export
 * carries the root documents; an import station follows them version by version, pins the new root (audited), and from
 * then on trusts only signers certified by it. A rotation not signed by both roots, or with a version missing, is
 * refused and changes nothing.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  auditSince,
  bundleOn,
  ecluse,
  ecluseOk,
  expectImportRefused,
  makeKeys,
  tmpDir,
  world,
  type World,
  mediaDir,
} from '../helpers/world.js';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

async function fresh(): Promise<World> {
  const dir = tmpDir('ecluse-rotate-');
  roots.push(dir);
  const w = await world({ keys: await makeKeys(path.join(dir, 'keys')) });
  roots.push(w.root);
  return w;
}

async function importNew(w: World, name: string, media: string) {
  await w.addImage(name, '1', 2048);
  await w.exportTo(w.path(media));
  return w.importJson(w.path(media));
}

const rotate = (w: World) => ecluseOk(['keys', 'rotate-root', '--keys', w.keys.dir, '--json']);

describe('root rotation', () => {
  it('is followed by the import station; signers certified by the old root are refused after it', async () => {
    const w = await fresh();
    expect((await importNew(w, 'a', 'm1')).json).toMatchObject({ ok: true });
    const oldAlice = w.path('alice-v1');
    fs.cpSync(w.keys.signer('alice'), oldAlice, { recursive: true });
    expect((await rotate(w)).json).toMatchObject({ ok: true, version: 2, signers: ['alice', 'bob'] });
    expect((await importNew(w, 'b', 'm2')).json).toMatchObject({ ok: true });
    const rotated = auditSince(w.inside).filter((a) => a.kind === 'trust.root-rotated');
    expect(rotated).toHaveLength(1);
    await w.addImage('c', '1', 2048);
    const r = await ecluse(['export', '--to', mediaDir(w.path('m3')), '--site', w.site, '--signer', oldAlice], {
      home: w.outside,
    });
    expect(r.code, r.stderr).toBe(0);
    const refused = await expectImportRefused(w, w.path('m3'), 'E_UNTRUSTED_SIGNER');
    expect((refused.json as { message: string }).message).toContain("was not issued by this site's root");
  });

  it('two rotations on one stick are followed in order', async () => {
    const w = await fresh();
    await rotate(w);
    await rotate(w);
    expect((await importNew(w, 'a', 'm1')).json).toMatchObject({ ok: true });
    const versions = auditSince(w.inside)
      .filter((a) => a.kind === 'trust.root-rotated')
      .map((a) => (JSON.parse(a.details) as { version: number }).version);
    expect(versions).toEqual([2, 3]);
  });

  it('a new root not signed by the old one is refused (E_SIGNATURE), and nothing changes', async () => {
    const w = await fresh();
    await rotate(w);
    await w.addImage('a', '1', 2048);
    await w.exportTo(w.path('m1'));
    const trust = path.join(bundleOn(w.path('m1')).root, 'trust');
    const trustJson = JSON.parse(fs.readFileSync(path.join(w.keys.dir, 'trust', 'trust.json'), 'utf8')) as {
      rootKeyId: string;
    };
    for (const f of fs.readdirSync(trust))
      if (f.startsWith('root-2.') && !f.includes(trustJson.rootKeyId)) fs.rmSync(path.join(trust, f));
    const r = await expectImportRefused(w, w.path('m1'), 'E_SIGNATURE');
    expect((r.json as { message: string }).message).toContain(
      'root version 2 on the media is not signed by root version 1',
    );
    expect(auditSince(w.inside).filter((a) => a.kind === 'trust.root-rotated')).toHaveLength(0);
  });

  it('versions must be consecutive: root 3 without root 2 is refused (E_FORMAT)', async () => {
    const w = await fresh();
    await rotate(w);
    await rotate(w);
    await w.addImage('a', '1', 2048);
    await w.exportTo(w.path('m1'));
    const trust = path.join(bundleOn(w.path('m1')).root, 'trust');
    for (const f of fs.readdirSync(trust)) if (f.startsWith('root-2.')) fs.rmSync(path.join(trust, f));
    const r = await expectImportRefused(w, w.path('m1'), 'E_FORMAT');
    expect((r.json as { message: string }).message).toContain('root version 3 is on the media but version 2 is not');
  });

  it('a station installed from the rotated trust folder takes bundles directly', async () => {
    const w = await fresh();
    await rotate(w);
    const home = await w.newInside('installed-after');
    await w.addImage('a', '1', 2048);
    await w.exportTo(w.path('m1'));
    expect((await w.importJson(w.path('m1'), home)).json).toMatchObject({ ok: true });
  });
});

describe('root rotation after a revocation', () => {
  it('never certifies a revoked signer again; its bundle is still refused (E_REVOKED) after the rotation', async () => {
    const w = await fresh();
    // What a thief of alice's laptop holds: her key and the certificate the first root issued her.
    const stolen = w.path('stolen-keys');
    fs.cpSync(w.keys.dir, stolen, { recursive: true });
    await ecluseOk(['keys', 'revoke', 'alice', '--keys', w.keys.dir, '--reason', 'laptop lost']);
    const bob = { signers: [w.keys.signer('bob')] };
    await w.addImage('a', '1', 2048);
    await w.exportTo(w.path('m1'), [], bob);
    expect((await w.importJson(w.path('m1'))).json).toMatchObject({ ok: true });

    const aliceCert = path.join(w.keys.signer('alice'), 'cert.pem');
    const before = fs.readFileSync(aliceCert);
    const r = await rotate(w);
    expect(r.json).toMatchObject({ ok: true, version: 2, signers: ['bob'], notCertified: ['alice'] });
    expect(fs.readFileSync(aliceCert)).toEqual(before);
    const newRoot = new crypto.X509Certificate(fs.readFileSync(path.join(w.keys.dir, 'trust', 'root.pem')));
    expect(new crypto.X509Certificate(before).verify(newRoot.publicKey)).toBe(false);
    const human = await ecluseOk(['keys', 'rotate-root', '--keys', w.keys.dir]);
    expect(human.stdout).toContain('not certified again (revoked): alice; they stay on the revocation list');

    await w.addImage('b', '1', 2048);
    await w.exportTo(w.path('m2'), [], bob);
    expect((await w.importJson(w.path('m2'))).json).toMatchObject({ ok: true });
    const site = await ecluseOk(['site', 'show', '--json'], { home: w.inside });
    expect(site.json).toMatchObject({
      root: { version: 3, pinnedBy: 'rotation', installedVersion: 1 },
      revocations: { version: 3, revoked: [{ name: 'alice', reason: 'laptop lost' }] },
    });

    // The thief signs with alice's key from an export station of their own: refused for the revocation.
    const thief = w.path('thief');
    const file = w.path('evil.raw');
    fs.writeFileSync(file, Buffer.alloc(4096, 7));
    await ecluseOk(['relay', 'add', file, '--name', 'evil', '--version', '1'], { home: thief });
    fs.mkdirSync(w.path('m3'));
    const signed = await ecluse(
      ['export', '--to', w.path('m3'), '--site', w.site, '--signer', path.join(stolen, 'signers', 'alice')],
      { home: thief },
    );
    expect(signed.code, signed.stderr).toBe(0);
    const refused = await expectImportRefused(w, w.path('m3'), 'E_REVOKED');
    expect((refused.json as { message: string }).message).toContain('alice');
  });
});
