/**
 * The loop through the real CLI: a vendor mirror on loopback (OpenPGP-signed SHA256SUMS) → relay fetch → export
 * (--plan first) → import at a site whose policy pins the vendor key → receipt back out → the second export carries
 * only the new release → a lost bundle resent → forged and foreign receipts refused → vendor evidence failing inside
 * although the bundle signature is good.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ecluse, ecluseOk, expectImportRefused, world, type World, mediaDir } from '../helpers/world.js';
import { checksumFile, makePgpVendor, startMirror, type Mirror, type PgpVendor } from '../relay/vendor-fixtures.js';

interface J {
  [k: string]: unknown;
}

describe('feeds, vendor evidence, receipts and resend', () => {
  let w: World;
  let vendor: PgpVendor;
  let mirror: Mirror;
  let mirrorDir: string;

  function publish(files: Record<string, Buffer>) {
    for (const [n, b] of Object.entries(files)) fs.writeFileSync(path.join(mirrorDir, n), b);
    const names = fs.readdirSync(mirrorDir).filter((n) => n.endsWith('.qcow2'));
    fs.writeFileSync(path.join(mirrorDir, 'SHA256SUMS'), checksumFile(mirrorDir, names));
    fs.rmSync(path.join(mirrorDir, 'SHA256SUMS.gpg'), { force: true });
    vendor.detachSign(path.join(mirrorDir, 'SHA256SUMS'));
  }

  beforeAll(async () => {
    w = await world();
    vendor = makePgpVendor('Cloud Vendor <release@vendor.example>');
    mirrorDir = w.path('mirror');
    fs.mkdirSync(mirrorDir);
    publish({ 'cloud-1.0.qcow2': randomBytes(400_000) });
    mirror = await startMirror(mirrorDir);
    fs.writeFileSync(w.path('vendor.asc'), vendor.publicKey);
    const policy = [
      'version: 1',
      'rules:',
      '  - name: cloud',
      '    artifacts: [cloud]',
      '    vendors: [vendor]',
      '    vendorKeys:',
      '      - |',
      ...vendor.publicKey
        .trimEnd()
        .split('\n')
        .map((l) => `        ${l}`),
      '  - name: rest',
      "    artifacts: ['*']",
      '',
    ].join('\n');
    fs.writeFileSync(w.path('policy.yaml'), policy);
    await ecluseOk(['policy', 'apply', w.path('policy.yaml'), '--json'], { home: w.inside });
  });
  afterAll(async () => {
    await mirror.close();
    vendor.close();
    w.cleanup();
  });

  it('runs the whole loop', async () => {
    const out = { home: w.outside };
    await ecluseOk(
      [
        'relay',
        'feed',
        'add',
        'cloud',
        '--vendor',
        'vendor',
        '--product',
        'cloud',
        '--kind',
        'checksums',
        '--url',
        mirror.url,
        '--checksums',
        'SHA256SUMS',
        '--signature',
        'SHA256SUMS.gpg',
        '--openpgp-key',
        w.path('vendor.asc'),
        '--match',
        'cloud-*.qcow2',
        '--disk-format',
        'qcow2',
        '--json',
      ],
      out,
    );
    const list = (await ecluseOk(['relay', 'feed', 'list', '--json'], out)).json as {
      feeds: Array<{ pinned: { openpgp: string[] } }>;
    };
    expect(list.feeds[0]?.pinned.openpgp).toEqual([vendor.fingerprint]);
    const f1 = (await ecluseOk(['relay', 'fetch', '--json'], out)).json as { fetched: J[] };
    expect(f1.fetched).toMatchObject([{ name: 'cloud', version: '1.0' }]);

    // --plan writes nothing and says how many media.
    const plan = (await ecluseOk(['export', '--plan', '--site', w.site, '--media-size', '256K', '--json'], out))
      .json as {
      plan: {
        mediaNeeded: number;
        volumes: unknown[];
        artifacts: Array<{ evidence: boolean }>;
        media: Array<{ freeSpaceNeeded: number }>;
      };
    };
    expect(plan.plan.volumes.length).toBeGreaterThanOrEqual(2);
    expect(plan.plan.artifacts[0]?.evidence).toBe(true);
    expect(plan.plan.mediaNeeded).toBeGreaterThanOrEqual(2);
    expect(plan.plan.media.every((m) => m.freeSpaceNeeded > 0)).toBe(true);
    expect(fs.existsSync(w.path('m1'))).toBe(false);

    await w.exportTo(w.path('m1'));
    const i1 = await w.importJson(w.path('m1'));
    expect(i1.code, i1.stderr).toBe(0);
    expect(JSON.stringify(i1.json)).toContain('vendor-evidence');

    // The receipt key is pinned outside; the receipt travels back.
    await ecluseOk(['receipt', 'key', '--out', w.path('receipt.pub'), '--json'], { home: w.inside });
    await ecluseOk(['relay', 'receipt', 'trust', w.path('receipt.pub'), '--site', w.site, '--json'], out);
    await ecluseOk(['receipt', 'export', '--to', w.path('back1'), '--json'], { home: w.inside });
    const taken = (await ecluseOk(['relay', 'receipt', 'import', w.path('back1'), '--json'], out)).json as {
      receipts: J[];
    };
    expect(taken.receipts).toMatchObject([{ number: 1, acknowledged: 1, inventory: 1, status: 'taken' }]);

    // A new release: the next export carries only it.
    publish({ 'cloud-1.1.qcow2': randomBytes(300_000) });
    await ecluseOk(['relay', 'fetch', '--json'], out);
    const e2 = (await w.exportTo(w.path('m2'))).json as {
      artifacts: Array<{ version: string }>;
      bundle: { sequence: number };
    };
    expect(e2.artifacts.map((a) => a.version)).toEqual(['1.1']);

    // Bundle 2 is lost before import: building bundle 3 on it is refused, resending it works and chains.
    publish({ 'cloud-1.2.qcow2': randomBytes(200_000) });
    await ecluseOk(['relay', 'fetch', '--json'], out);
    const blocked = await ecluse(
      ['export', '--to', mediaDir(w.path('m3')), '--site', w.site, '--signer', w.keys.signer('alice'), '--json'],
      out,
    );
    expect(blocked.code).toBe(1);
    expect(blocked.json).toMatchObject({ ok: false, code: 'E_UNACKNOWLEDGED' });
    fs.rmSync(w.path('m2'), { recursive: true });
    const resent = (
      await ecluseOk(
        ['export', '--resend', '2', '--to', mediaDir(w.path('m2b')), '--signer', w.keys.signer('alice'), '--json'],
        out,
      )
    ).json as {
      bundle: { sequence: number; id: string };
    };
    expect(resent.bundle).toMatchObject({ sequence: 2 });
    const i2 = await w.importJson(w.path('m2b'));
    expect(i2.code, i2.stderr).toBe(0);
    await ecluseOk(['receipt', 'export', '--to', w.path('back2'), '--json'], { home: w.inside });
    await ecluseOk(['relay', 'receipt', 'import', w.path('back2'), '--json'], out);
    const e3 = (await w.exportTo(w.path('m3'))).json as { artifacts: Array<{ version: string }> };
    expect(e3.artifacts.map((a) => a.version)).toEqual(['1.2']);
    const i3 = await w.importJson(w.path('m3'));
    expect(i3.code, i3.stderr).toBe(0);

    // An old receipt again is refused (replay), a forged one too, and one from another site.
    const replay = await ecluse(['relay', 'receipt', 'import', w.path('back1'), '--json'], out);
    expect(replay.json).toMatchObject({ ok: false, code: 'E_RECEIPT' });
    await ecluseOk(['receipt', 'export', '--to', w.path('back3'), '--json'], { home: w.inside });
    const rdir = path.join(w.path('back3'), 'ecluse', 'receipts');
    const rfile = path.join(rdir, fs.readdirSync(rdir)[0] as string);
    const bundle = JSON.parse(fs.readFileSync(rfile, 'utf8')) as { dsseEnvelope: { payload: string } };
    const payload = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8')) as {
      inventory: { artifacts: unknown[] };
    };
    payload.inventory.artifacts = [];
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(payload)).toString('base64');
    fs.writeFileSync(rfile, JSON.stringify(bundle));
    const forged = await ecluse(['relay', 'receipt', 'import', w.path('back3'), '--json'], out);
    expect(forged.json).toMatchObject({ ok: false, code: 'E_RECEIPT' });
    const other = await w.newInside('elsewhere', 'site-beta');
    await ecluseOk(['receipt', 'export', '--to', w.path('back4'), '--json'], { home: other });
    const foreign = await ecluse(['relay', 'receipt', 'import', w.path('back4'), '--json'], out);
    expect(foreign.json).toMatchObject({ ok: false, code: 'E_RECEIPT' });
  });

  it('refuses inside an artifact whose vendor evidence fails, although the bundle signature is good', async () => {
    const v = await world({ keys: w.keys });
    try {
      await ecluseOk(['policy', 'apply', w.path('policy.yaml'), '--json'], { home: v.inside });
      // A compromised export station: an image under the vendor's name with no vendor signature at all...
      const file = v.path('cloud-9.qcow2');
      fs.writeFileSync(file, randomBytes(100_000));
      await ecluseOk(
        [
          'relay',
          'add',
          file,
          '--name',
          'cloud',
          '--version',
          '9.0',
          '--vendor',
          'vendor',
          '--disk-format',
          'qcow2',
          '--json',
        ],
        {
          home: v.outside,
        },
      );
      await v.exportTo(v.path('m1'));
      await expectImportRefused(v, v.path('m1'), 'E_VENDOR_UNTRUSTED');
      // ...or with the evidence of another release of the vendor (a genuine signature, another image).
      const real = new Database(path.join(w.outside, 'relay.sqlite'), { readonly: true });
      const evidence = (
        real.prepare("SELECT evidence FROM artifacts WHERE version = '1.0'").get() as { evidence: string }
      ).evidence;
      real.close();
      const db = new Database(path.join(v.outside, 'relay.sqlite'));
      db.prepare("UPDATE artifacts SET evidence = ?, exported_in = NULL WHERE version = '9.0'").run(evidence);
      db.close();
      const v2 = await v.newInside('inside-2');
      await ecluseOk(['policy', 'apply', w.path('policy.yaml'), '--json'], { home: v2 });
      const fresh = v.path('outside-2');
      fs.mkdirSync(fresh);
      // Copy the catalog (with the swapped evidence) to a new export station: its first bundle is sequence 1.
      fs.cpSync(path.join(v.outside, 'blobs'), path.join(fresh, 'blobs'), { recursive: true });
      const src = new Database(path.join(v.outside, 'relay.sqlite'), { readonly: true });
      await src.backup(path.join(fresh, 'relay.sqlite'));
      src.close();
      const fdb = new Database(path.join(fresh, 'relay.sqlite'));
      fdb.exec(
        "DELETE FROM exports; UPDATE artifacts SET exported_in = NULL; UPDATE settings SET value = 'relay-fresh' WHERE key = 'station'",
      );
      fdb.close();
      await ecluseOk(
        ['export', '--to', mediaDir(v.path('m3')), '--site', v.site, '--signer', w.keys.signer('alice'), '--json'],
        {
          home: fresh,
        },
      );
      await expectImportRefused(v, v.path('m3'), 'E_VENDOR_DIGEST', v2);
    } finally {
      v.cleanup();
    }
  });

  it('site init prints the receipt key, the one receipt key and receipts use', async () => {
    const home = w.path('init-prints-key');
    const init = (await ecluseOk(['site', 'init', '--trust', w.keys.trust, '--site', 'site-gamma', '--json'], { home }))
      .json as { receiptKey: { keyId: string; publicKey: string; file: string } };
    const key = (await ecluseOk(['receipt', 'key', '--json'], { home })).json as { keyId: string; publicKey: string };
    expect(init.receiptKey.keyId).toMatch(/^[0-9a-f]{64}$/);
    expect(init.receiptKey).toMatchObject({ keyId: key.keyId, publicKey: key.publicKey });
    expect(fs.readFileSync(init.receiptKey.file, 'utf8')).toBe(key.publicKey);
  });
});
