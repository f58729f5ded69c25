/**
 * Glance image signatures: an image imported from a bundle carries img_signature* properties made with the import
 * station's key; `ecluse site cert --der` exports the certificate; the bytes downloaded with `openstack image save`
 * verify with cursive (the library Nova uses for verify_glance_signatures), Barbican stood in for by the exported
 * DER file, and a changed byte does not.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cursiveVerify } from '../conformance/cursive.js';
import { clientEnv, runClient, startEcluseServe, type Peer } from '../conformance/peers.js';
import { ecluseOk, sha256, world, type AddedImage, type World } from '../helpers/world.js';

describe('Glance image signatures on imported images', () => {
  let w: World;
  let img: AddedImage;
  let serve: Peer;
  let home: string;

  beforeAll(async () => {
    w = await world();
    img = await w.addImage('signed-image', '1.0.0', 1024 * 1024 + 3);
    await w.exportTo(w.path('media'));
    const r = await w.importJson(w.path('media'));
    if (r.code !== 0) throw new Error(`import failed: ${r.stderr}`);
    serve = await startEcluseServe(w.inside);
    home = w.path('client-home');
    fs.mkdirSync(home);
  }, 180_000);

  afterAll(async () => {
    await serve?.stop();
    w?.cleanup();
  });

  it('the image has the four properties; the exported certificate verifies them with cursive', async () => {
    const list = (await (await fetch(`${serve.url}/v2/images?name=signed-image`)).json()) as {
      images: Record<string, unknown>[];
    };
    const shown = list.images[0]!;
    expect(shown).toMatchObject({
      img_signature_hash_method: 'SHA-256',
      img_signature_key_type: 'RSA-PSS',
      img_signature_certificate_uuid: expect.stringMatching(/^[0-9a-f-]{36}$/),
      img_signature: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/),
    });
    const cert = await ecluseOk(['site', 'cert', '--der', '--out', w.path('signing.der'), '--json'], {
      home: w.inside,
    });
    expect((cert.json as { uuid: string }).uuid).toBe(shown.img_signature_certificate_uuid);
    // Node and openssl agree it is a DER X.509 certificate
    const x509 = new crypto.X509Certificate(fs.readFileSync(w.path('signing.der')));
    expect(x509.subject).toContain('image signing');

    await runClient(
      'openstack',
      [
        '--os-auth-type',
        'none',
        '--os-endpoint',
        serve.url,
        'image',
        'save',
        '--file',
        w.path('saved.raw'),
        'signed-image',
      ],
      clientEnv(home),
    );
    expect(sha256(fs.readFileSync(w.path('saved.raw')))).toBe(sha256(img.bytes));
    expect(await cursiveVerify(w.path('signing.der'), w.path('saved.raw'), shown, home)).toBe('VERIFIED True');

    const bad = Buffer.from(img.bytes);
    bad[1000] = (bad[1000] as number) ^ 1;
    fs.writeFileSync(w.path('bad.raw'), bad);
    expect(await cursiveVerify(w.path('signing.der'), w.path('bad.raw'), shown, home)).toBe('INVALID InvalidSignature');
  });

  it('site cert --uuid records the Barbican secret id for images promoted from then on', async () => {
    const uuid = crypto.randomUUID();
    const r = await ecluseOk(['site', 'cert', '--uuid', uuid, '--json'], { home: w.inside });
    expect(r.json).toMatchObject({ ok: true, uuid, format: 'pem' });
    const pem = await ecluseOk(['site', 'cert'], { home: w.inside });
    expect(pem.stdout).toMatch(/^-----BEGIN CERTIFICATE-----/);
  });
});
