/**
 * Private keys at rest: PKCS#8 PEM, encrypted under a passphrase (PBES2: scrypt, then AES-256-CBC), or plain PKCS#8
 * when the operator chose `--no-passphrase`. Files are written 0600 and never overwritten.
 *
 * Node's KeyObject.export encrypts with PBKDF2 at OpenSSL's default of 2048 iterations, which a stolen key file does
 * not survive long. So the EncryptedPrivateKeyInfo (RFC 5958, PBES2 of RFC 8018 with the scrypt KDF of RFC 7914 7.1)
 * is assembled here: scrypt and AES by Node's crypto, DER by asn1js. The costs are OWASP's scrypt minimum for 16 MiB
 * (N = 2^14, r = 8, p = 5), which stays inside OpenSSL's default scrypt memory limit so that Node, `openssl pkey` and
 * any PKCS#8 reader with scrypt decrypt it. Reading accepts any PKCS#8 encryption OpenSSL does (older key folders
 * were written with PBKDF2).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import * as asn1js from 'asn1js';
import path from 'node:path';
import { syncDir, writeFileSynced } from '../sneakernet/durable.js';
import { EcluseError } from '../sneakernet/errors.js';
import { checkId } from '../sneakernet/check-ids.js';

const ENCRYPTED_HEADER = '-----BEGIN ENCRYPTED PRIVATE KEY-----';

const OID_PBES2 = '1.2.840.113549.1.5.13';
const OID_SCRYPT = '1.3.6.1.4.1.11591.4.11';
const OID_AES256_CBC = '2.16.840.1.101.3.4.1.42';
export const KEY_SCRYPT = { N: 2 ** 14, r: 8, p: 5 } as const;

/** True when the PEM text holds an encrypted PKCS#8 key. */
export function isEncryptedPem(pem: string): boolean {
  return pem.includes(ENCRYPTED_HEADER);
}

const algorithm = (oid: string, parameters: asn1js.BaseBlock) =>
  new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid }), parameters] });

/** EncryptedPrivateKeyInfo DER of `key` under `passphrase`: PBES2, scrypt (KEY_SCRYPT), AES-256-CBC. */
function encryptPkcs8(key: crypto.KeyObject, passphrase: string): Buffer {
  const salt = crypto.randomBytes(16);
  const iv = crypto.randomBytes(16);
  const { N, r, p } = KEY_SCRYPT;
  const derived = crypto.scryptSync(passphrase, salt, 32, { N, r, p, maxmem: 64 * 1024 * 1024 });
  const cipher = crypto.createCipheriv('aes-256-cbc', derived, iv);
  const plain = key.export({ type: 'pkcs8', format: 'der' });
  const encrypted = Buffer.concat([cipher.update(plain), cipher.final()]);
  plain.fill(0);
  derived.fill(0);
  const scryptParams = new asn1js.Sequence({
    value: [
      new asn1js.OctetString({ valueHex: salt }),
      new asn1js.Integer({ value: N }),
      new asn1js.Integer({ value: r }),
      new asn1js.Integer({ value: p }),
      new asn1js.Integer({ value: 32 }),
    ],
  });
  const pbes2Params = new asn1js.Sequence({
    value: [algorithm(OID_SCRYPT, scryptParams), algorithm(OID_AES256_CBC, new asn1js.OctetString({ valueHex: iv }))],
  });
  const info = new asn1js.Sequence({
    value: [algorithm(OID_PBES2, pbes2Params), new asn1js.OctetString({ valueHex: encrypted })],
  });
  return Buffer.from(info.toBER());
}

/** PEM text of `key`: encrypted PKCS#8 under `passphrase`, or plain PKCS#8 when it is null. */
export function exportPrivateKey(key: crypto.KeyObject, passphrase: string | null): string {
  if (passphrase === null) return key.export({ type: 'pkcs8', format: 'pem' }).toString();
  const der = encryptPkcs8(key, passphrase);
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  const pem = `${ENCRYPTED_HEADER}\n${lines.join('\n')}\n-----END ENCRYPTED PRIVATE KEY-----\n`;
  // Written only once OpenSSL reads it back as the same key under this passphrase.
  const back = crypto.createPrivateKey({ key: pem, format: 'pem', passphrase: passphrase });
  if (!back.equals(key)) {
    throw new EcluseError(
      'E_KEY',
      'the encrypted private key does not read back as the same key under its passphrase: nothing was written; try again, and report it if it happens again',
      { check: checkId('key-encryption') },
    );
  }
  return pem;
}

/** Writes a private key file, mode 0600, refusing to replace an existing file. */
export function writePrivateKey(file: string, key: crypto.KeyObject, passphrase: string | null): void {
  fs.writeFileSync(file, exportPrivateKey(key, passphrase), { mode: 0o600, flag: 'wx' });
  fs.chmodSync(file, 0o600);
}

/**
 * Reads a private key file. The passphrase callback is only called when the key is encrypted. A missing or wrong
 * passphrase is E_PASSPHRASE; an unreadable key is E_KEY.
 */
export async function readPrivateKey(
  file: string,
  passphrase: () => Promise<string | null>,
): Promise<crypto.KeyObject> {
  let pem: string;
  try {
    pem = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new EcluseError('E_KEY', `cannot read the private key ${file}: ${(e as Error).message}`, {
      check: checkId('key'),
    });
  }
  if (!isEncryptedPem(pem)) {
    try {
      return crypto.createPrivateKey({ key: pem, format: 'pem' });
    } catch (e) {
      throw new EcluseError('E_KEY', `${file} is not a usable private key: ${(e as Error).message}`, {
        check: checkId('key'),
      });
    }
  }
  const pass = await passphrase();
  if (pass === null) {
    throw new EcluseError('E_PASSPHRASE', `${file} is encrypted and no passphrase was given`, {
      check: checkId('passphrase'),
    });
  }
  try {
    return crypto.createPrivateKey({ key: pem, format: 'pem', passphrase: pass });
  } catch (e) {
    throw new EcluseError(
      'E_PASSPHRASE',
      `wrong passphrase for ${file} (it could not be decrypted)`,
      {
        check: checkId('passphrase'),
      },
      { cause: e },
    );
  }
}

/**
 * Encrypts the key in `file` again under `newPassphrase` (scrypt, whatever the file used before): the new file is
 * written beside it, fsynced and renamed over it, so a crash leaves either the old or the new file, never neither.
 */
export async function changePassphrase(
  file: string,
  oldPassphrase: () => Promise<string | null>,
  newPassphrase: string,
): Promise<void> {
  const key = await readPrivateKey(file, oldPassphrase);
  const next = path.join(path.dirname(file), `.${path.basename(file)}.new-${process.pid}`);
  try {
    await writeFileSynced(next, exportPrivateKey(key, newPassphrase), { flag: 'wx', mode: 0o600 });
    await fs.promises.rename(next, file);
  } catch (e) {
    await fs.promises.rm(next, { force: true });
    throw new EcluseError(
      'E_IO',
      `cannot replace ${file}: ${(e as Error).message}`,
      { check: checkId('key') },
      { cause: e },
    );
  }
  await syncDir(path.dirname(file));
}
