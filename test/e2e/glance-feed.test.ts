/**
 * An outside Glance as a vendor feed, through the real CLI: a staging cloud (`ecluse serve` on its own home, populated
 * through its Glance v2 write API; one image signed by the OpenStack SDK's own image signer) → `relay feed add --kind
 * glance` → `relay fetch` → export → import at a site whose policy pins the vendor's certificate (accepted) or
 * another vendor key (refused), an unsigned image taken with --allow-unsigned refused inside, and a fetch from the
 * reference Glance (../shared/peers/real-glance.sh) when it is installed.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEcluseServe, startRealGlance, type Peer } from '../conformance/peers.js';
import { ecluse, ecluseOk, expectImportRefused, world, type World } from '../helpers/world.js';
import { addProperties, glanceFeedAddArgs, publish, rsaSigner, type CertSigner } from '../relay/glance-fixtures.js';

const SDK_SIGNER = `
import base64, sys
from openstack.image import image_signer
s = image_signer.ImageSigner(hash_method='SHA-256', padding_method='RSA-PSS')
s.load_private_key(sys.argv[1])
with open(sys.argv[2], 'rb') as f:
    print(base64.b64encode(s.generate_signature(f)).decode())
`;

describe('glance feed: staging cloud to site', () => {
  let w: World;
  let staging: Peer;
  let vendor: CertSigner;
  let other: CertSigner;

  /** The img_signature* properties the OpenStack SDK's signer (what `openstack image create --sign-key-path` uses) makes. */
  function sdkSignature(data: Buffer): Record<string, string> {
    const key = w.path('vendor-key.pem');
    fs.writeFileSync(key, vendor.key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const file = w.path('to-sign.img');
    fs.writeFileSync(file, data);
    const sig = execFileSync('/usr/bin/python3', ['-c', SDK_SIGNER, key, file]).toString().trim();
    return {
      img_signature: sig,
      img_signature_hash_method: 'SHA-256',
      img_signature_key_type: 'RSA-PSS',
      img_signature_certificate_uuid: vendor.uuid,
    };
  }

  function policy(file: string, keyPem: string) {
    const lines = [
      'version: 1',
      'rules:',
      '  - name: vendor-os',
      '    artifacts: [vendor-os]',
      '    vendors: [vendorix]',
      '    vendorKeys:',
      '      - |',
      ...keyPem
        .trimEnd()
        .split('\n')
        .map((l) => `        ${l}`),
      '  - name: rest',
      "    artifacts: ['*']",
      '',
    ];
    fs.writeFileSync(w.path(file), lines.join('\n'));
    return w.path(file);
  }

  const feedAdd = (name: string, args: string[], product = 'vendor-os') =>
    ecluseOk(glanceFeedAddArgs(name, product, ['--endpoint', staging.url, ...args]), { home: w.outside });

  beforeAll(async () => {
    w = await world();
    staging = await startEcluseServe(await w.newInside('staging'));
    vendor = rsaSigner('Vendorix image signing');
    other = rsaSigner('Another vendor');
    fs.writeFileSync(w.path('vendor.pem'), vendor.certPem);
  });
  afterAll(async () => {
    await staging?.stop();
    w?.cleanup();
  });

  it('brings a signed image across; the site accepts it with the vendor certificate pinned, refuses it with another key', async () => {
    const data = crypto.randomBytes(300_000);
    await publish(staging.url, {
      name: 'vendor-os-1.0',
      data,
      tags: ['release'],
      properties: { version: '1.0', os_distro: 'vendorix', ...sdkSignature(data) },
    });
    await publish(staging.url, { name: 'vendor-os-1.0-beta', data: crypto.randomBytes(1000), tags: ['beta'] });
    const added = (
      await feedAdd('staging', [
        '--match-name',
        'vendor-os-1.*',
        '--match-tag',
        'release',
        '--match-property',
        'os_distro=vendorix',
        '--certificate',
        `${vendor.uuid}=${w.path('vendor.pem')}`,
      ])
    ).json as { feed: { kind: string; pinned: { glance: Array<{ uuid: string }> } } };
    expect(added.feed).toMatchObject({ kind: 'glance', pinned: { glance: [{ uuid: vendor.uuid }] } });
    const listed = (await ecluseOk(['relay', 'feed', 'list'], { home: w.outside })).stdout;
    expect(listed).toContain(`staging: vendorix vendor-os (glance) from ${staging.url}; pinned ${vendor.uuid}`);

    const fetched = (await ecluseOk(['relay', 'fetch', '--json'], { home: w.outside })).json as {
      fetched: unknown[];
      present: unknown[];
    };
    expect(fetched.fetched).toMatchObject([{ name: 'vendor-os', version: '1.0', evidence: 'glance-image' }]);
    const again = await ecluseOk(['relay', 'fetch'], { home: w.outside });
    expect(again.stdout.trim().split('\n').pop()).toBe('0 new release(s), 1 already in the catalog');

    await ecluseOk(['policy', 'apply', policy('policy-vendor.yaml', vendor.certPem), '--json'], { home: w.inside });
    await w.exportTo(w.path('m1'));
    const imported = await w.importJson(w.path('m1'));
    expect(imported.code, imported.stderr).toBe(0);
    const body = imported.json as { checks: Array<{ check: string; detail: string }>; images: Array<{ name: string }> };
    expect(body.checks.find((c) => c.check === 'vendor-evidence')?.detail).toMatch(/vendor-os@1.0 \(Glance signature/);
    expect(body.images).toMatchObject([{ name: 'vendor-os' }]);

    const elsewhere = await w.newInside('inside-other-key');
    await ecluseOk(['policy', 'apply', policy('policy-other.yaml', other.certPem), '--json'], { home: elsewhere });
    const refused = await expectImportRefused(w, w.path('m1'), 'E_VENDOR_UNTRUSTED', elsewhere);
    expect(refused.stderr).toMatch(/Glance image signature/);
  });

  it('refuses at fetch an image signed with a certificate the feed does not pin (exit 1, E_VENDOR_UNTRUSTED)', async () => {
    const data = crypto.randomBytes(5000);
    await publish(staging.url, {
      name: 'stranger-os-1.0',
      data,
      properties: { version: '1.0', ...other.sign(data) },
    });
    await feedAdd(
      'strangers',
      ['--match-name', 'stranger-os-1.0', '--certificate', `${vendor.uuid}=${w.path('vendor.pem')}`],
      'stranger-os',
    );
    const r = await ecluse(['relay', 'fetch', '--feed', 'strangers', '--json'], { home: w.outside });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, code: 'E_VENDOR_UNTRUSTED' });
    await ecluseOk(['relay', 'feed', 'remove', 'strangers'], { home: w.outside });
  });

  it('takes an unsigned image only when the feed allows it, as provenance the site refuses under a keyed rule', async () => {
    await publish(staging.url, {
      name: 'vendor-os-2.0',
      data: crypto.randomBytes(20_000),
      properties: { version: '2.0' },
    });
    await feedAdd('unsigned', ['--match-name', 'vendor-os-2.*', '--allow-unsigned']);
    const f = (await ecluseOk(['relay', 'fetch', '--feed', 'unsigned', '--json'], { home: w.outside })).json as {
      fetched: unknown[];
    };
    expect(f.fetched).toMatchObject([{ version: '2.0', evidence: 'glance-image' }]);
    await w.exportTo(w.path('m2'));
    const r = await expectImportRefused(w, w.path('m2'), 'E_VENDOR_UNTRUSTED');
    expect(r.stderr).toMatch(/provenance only/);
  });

  it.skipIf(!fs.existsSync('/usr/bin/glance-api'))(
    'reads the reference Glance: filters, download, signature added after upload',
    async () => {
      let real: Peer | undefined;
      try {
        real = await startRealGlance(w.path('real-glance'));
        const data = crypto.randomBytes(120_000);
        // A Glance without a key manager refuses uploads of signed images: the signature is added once active.
        const id = await publish(real.url, {
          name: 'vendor-os-3.0',
          data,
          tags: ['release'],
          properties: { version: '3.0', os_distro: 'vendorix' },
        });
        await addProperties(real.url, id, vendor.sign(data));
        await publish(real.url, { name: 'vendor-os-3.1', data: crypto.randomBytes(100), tags: ['beta'] });
        await ecluseOk(
          [
            'relay',
            'feed',
            'add',
            'real',
            '--kind',
            'glance',
            '--vendor',
            'vendorix',
            '--product',
            'vendor-os',
            '--endpoint',
            real.url,
            '--match-name',
            'vendor-os-3.*',
            '--match-tag',
            'release',
            '--match-property',
            'os_distro=vendorix',
            '--version-property',
            'version',
            '--certificate',
            `${vendor.uuid}=${w.path('vendor.pem')}`,
            '--json',
          ],
          { home: w.outside },
        );
        const r = (await ecluseOk(['relay', 'fetch', '--feed', 'real', '--json'], { home: w.outside })).json as {
          fetched: Array<{ sha256: string }>;
        };
        expect(r.fetched).toMatchObject([{ name: 'vendor-os', version: '3.0', evidence: 'glance-image' }]);
        expect(r.fetched[0]?.sha256).toBe(crypto.createHash('sha256').update(data).digest('hex'));
      } finally {
        await real?.stop();
      }
    },
    180_000,
  );
});
