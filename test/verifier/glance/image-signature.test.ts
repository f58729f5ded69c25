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
  signSha256Digest,
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

  // Importing signs from the sha256 it already computed while staging: the signature must be the one Node and openssl
  // expect over the bytes themselves, with the maximum salt, whatever the modulus length (3072: the encoded message
  // fills the modulus; 2049: it is one octet shorter).
  it.each([3072, 2049])(
    'signs a sha256 computed elsewhere (RSA-%i): Node and openssl verify over the bytes',
    (bits) => {
      const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
      const data = crypto.randomBytes(100_000);
      const digest = crypto.createHash('sha256').update(data).digest('hex');
      const signatures = new Set<string>();
      for (let i = 0; i < 3; i++) {
        const signature = Buffer.from(signSha256Digest(privateKey, digest), 'base64');
        signatures.add(signature.toString('hex'));
        const options = { key: publicKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING };
        const max = Math.ceil((bits - 1) / 8) - 32 - 2;
        expect(crypto.verify('sha256', data, { ...options, saltLength: max }, signature)).toBe(true);
        expect(crypto.verify('sha256', data, { ...options, saltLength: max - 1 }, signature)).toBe(false);
        const other = Buffer.from(data);
        other[7] = (other[7] as number) ^ 1;
        expect(crypto.verify('sha256', other, { ...options, saltLength: max }, signature)).toBe(false);
      }
      expect(signatures.size).toBe(3); // a fresh random salt each time
      const file = path.join(dir, `signed-${bits}.bin`);
      const sig = path.join(dir, `signed-${bits}.sig`);
      const pub = path.join(dir, `signed-${bits}.pem`);
      fs.writeFileSync(file, data);
      fs.writeFileSync(sig, Buffer.from(signSha256Digest(privateKey, digest), 'base64'));
      fs.writeFileSync(pub, publicKey.export({ type: 'spki', format: 'pem' }));
      const out = execFileSync('openssl', [
        'dgst',
        '-sha256',
        ...['-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:max', '-sigopt', 'rsa_mgf1_md:sha256'],
        ...['-verify', pub, '-signature', sig, file],
      ]).toString();
      expect(out.trim()).toBe('Verified OK');
      expect(() => signSha256Digest(privateKey, 'not hex')).toThrow();
    },
  );
});
