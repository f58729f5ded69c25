/**
 * Private keys at rest: the encrypted PKCS#8 file is PBES2 with scrypt at the documented costs (read back by
 * openssl's own ASN.1 parser, not by the code that wrote it), decrypts with Node and with `openssl pkey` under the
 * passphrase and with nothing else, and key files written by earlier versions (PBKDF2) still open.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_SCRYPT, exportPrivateKey, readPrivateKey, writePrivateKey } from '../../keys/keyfile.js';
import { refusal, tmpDir } from './fixtures.js';

const PASSPHRASE = 'correct horse battery staple é';

describe('private key files', () => {
  let dir: string;
  beforeAll(() => {
    dir = tmpDir('keyfile');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['ec', { namedCurve: 'P-256' }],
    ['rsa', { modulusLength: 2048 }],
  ] as const)(
    'encrypts a %s key with PBES2 scrypt and AES-256-CBC; Node and openssl decrypt it',
    async (type, options) => {
      const { privateKey } = crypto.generateKeyPairSync(type as 'ec', options as crypto.ECKeyPairKeyObjectOptions);
      const file = path.join(dir, `${type}.pem`);
      writePrivateKey(file, privateKey, PASSPHRASE);
      expect(fs.statSync(file).mode & 0o777).toBe(0o600);
      const pem = fs.readFileSync(file, 'utf8');
      expect(pem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/);

      const asn1 = execFileSync('openssl', ['asn1parse', '-in', file]).toString();
      expect(asn1).toMatch(/OBJECT\s+:PBES2/);
      expect(asn1).toMatch(/OBJECT\s+:scrypt/);
      expect(asn1).toMatch(/OBJECT\s+:aes-256-cbc/);
      const ints = [...asn1.matchAll(/prim: INTEGER\s+:([0-9A-F]+)/g)].map((m) => parseInt(m[1] as string, 16));
      expect(ints.slice(0, 4)).toEqual([KEY_SCRYPT.N, KEY_SCRYPT.r, KEY_SCRYPT.p, 32]);
      expect(KEY_SCRYPT.N * KEY_SCRYPT.r * KEY_SCRYPT.p).toBeGreaterThanOrEqual(2 ** 14 * 8 * 5); // OWASP's minimum

      const read = await readPrivateKey(file, () => Promise.resolve(PASSPHRASE));
      expect(read.equals(privateKey)).toBe(true);
      const viaOpenssl = execFileSync('openssl', ['pkey', '-in', file, '-passin', 'env:KEY_PASS'], {
        env: { ...process.env, KEY_PASS: PASSPHRASE },
      }).toString();
      expect(crypto.createPrivateKey(viaOpenssl).equals(privateKey)).toBe(true);

      await refusal(() => readPrivateKey(file, () => Promise.resolve(`${PASSPHRASE}x`)), 'E_PASSPHRASE');
      await refusal(() => readPrivateKey(file, () => Promise.resolve(null)), 'E_PASSPHRASE');
      expect(() => writePrivateKey(file, privateKey, PASSPHRASE)).toThrow(/EEXIST/);
    },
  );

  it('uses a fresh salt and IV each time; an unencrypted export stays plain PKCS#8', () => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(exportPrivateKey(privateKey, PASSPHRASE)).not.toBe(exportPrivateKey(privateKey, PASSPHRASE));
    expect(exportPrivateKey(privateKey, null)).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  });

  it('still opens key files written with PBKDF2 (before scrypt), and refuses a damaged one with E_KEY', async () => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const old = path.join(dir, 'pbkdf2.pem');
    fs.writeFileSync(
      old,
      privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: PASSPHRASE }),
    );
    expect((await readPrivateKey(old, () => Promise.resolve(PASSPHRASE))).equals(privateKey)).toBe(true);
    const damaged = path.join(dir, 'damaged.pem');
    fs.writeFileSync(damaged, '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n');
    await refusal(() => readPrivateKey(damaged, () => Promise.resolve(null)), 'E_KEY');
  });
});
