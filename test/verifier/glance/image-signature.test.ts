/**
 * The station's image-signing key and certificate (node-forge issues, Node checks) and the RSA-PSS signature over
 * image bytes, verified independently with the openssl command line (same algorithm as cursive: PSS, MGF1 SHA-256,
 * salt length recovered from the signature).
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDb, type Db } from '../../../verifier/db.js';
import {
  imageSignatureProperties,
  imageSigner,
  setCertificateUuid,
  signingPaths,
  verifyFileSignature,
} from '../../../verifier/image-signature.js';

let dir: string;
let db: Db;
const site = () => ({ db, home: { root: dir }, siteId: 'paris-1' });

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-sig-'));
  db = openDb(dir);
});
afterAll(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('image signatures', () => {
  it('signs image bytes with RSA-PSS SHA-256 max salt; openssl and Node verify; a flipped byte fails', async () => {
    const file = path.join(dir, 'image.raw');
    const data = crypto.randomBytes(3 * 1024 * 1024 + 7);
    fs.writeFileSync(file, data);
    const props = await imageSignatureProperties(site(), file);
    expect(props).toMatchObject({
      img_signature_hash_method: 'SHA-256',
      img_signature_key_type: 'RSA-PSS',
      img_signature_certificate_uuid: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    const p = signingPaths(dir);
    expect(fs.statSync(p.key).mode & 0o777).toBe(0o600);
    const cert = fs.readFileSync(p.cert, 'utf8');
    const x509 = new crypto.X509Certificate(cert);
    expect(x509.verify(x509.publicKey)).toBe(true); // self-signed, by the same key
    expect(await verifyFileSignature(cert, file, props.img_signature!)).toBe(true);

    const sig = path.join(dir, 'sig.bin');
    const pub = path.join(dir, 'pub.pem');
    fs.writeFileSync(sig, Buffer.from(props.img_signature!, 'base64'));
    fs.writeFileSync(pub, x509.publicKey.export({ type: 'spki', format: 'pem' }));
    const ok = execFileSync('openssl', [
      'dgst',
      '-sha256',
      '-sigopt',
      'rsa_padding_mode:pss',
      '-sigopt',
      'rsa_pss_saltlen:max',
      '-sigopt',
      'rsa_mgf1_md:sha256',
      '-verify',
      pub,
      '-signature',
      sig,
      file,
    ]).toString();
    expect(ok.trim()).toBe('Verified OK');

    data[12345] = (data[12345] as number) ^ 0xff;
    fs.writeFileSync(file, data);
    expect(await verifyFileSignature(cert, file, props.img_signature!)).toBe(false);
  });

  it('keeps one key; --uuid changes the certificate uuid only', async () => {
    const before = await imageSigner(db, dir, 'paris-1');
    const uuid = crypto.randomUUID();
    setCertificateUuid(db, uuid);
    const after = await imageSigner(db, dir, 'paris-1');
    expect(after.certPem).toBe(before.certPem);
    expect(after.certUuid).toBe(uuid);
    expect(() => setCertificateUuid(db, 'not-a-uuid')).toThrow();
  });
});
