/**
 * Private keys at rest: PKCS#8 PEM, encrypted with AES-256-CBC under a passphrase (PBES2), or plain PKCS#8 when the
 * operator chose `--no-passphrase`. Files are written 0600 and never overwritten.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { EcluseError } from '../sneakernet/errors.js';

const ENCRYPTED_HEADER = '-----BEGIN ENCRYPTED PRIVATE KEY-----';

/** True when the PEM text holds an encrypted PKCS#8 key. */
export function isEncryptedPem(pem: string): boolean {
  return pem.includes(ENCRYPTED_HEADER);
}

/** PEM text of `key`: encrypted PKCS#8 under `passphrase`, or plain PKCS#8 when it is null. */
export function exportPrivateKey(key: crypto.KeyObject, passphrase: string | null): string {
  return passphrase === null
    ? key.export({ type: 'pkcs8', format: 'pem' }).toString()
    : key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }).toString();
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
    throw new EcluseError('E_KEY', `cannot read the private key ${file}: ${(e as Error).message}`, { check: 'key' });
  }
  if (!isEncryptedPem(pem)) {
    try {
      return crypto.createPrivateKey({ key: pem, format: 'pem' });
    } catch (e) {
      throw new EcluseError('E_KEY', `${file} is not a usable private key: ${(e as Error).message}`, { check: 'key' });
    }
  }
  const pass = await passphrase();
  if (pass === null) {
    throw new EcluseError('E_PASSPHRASE', `${file} is encrypted and no passphrase was given`, { check: 'passphrase' });
  }
  try {
    return crypto.createPrivateKey({ key: pem, format: 'pem', passphrase: pass });
  } catch (e) {
    throw new EcluseError(
      'E_PASSPHRASE',
      `wrong passphrase for ${file} (it could not be decrypted)`,
      {
        check: 'passphrase',
      },
      { cause: e },
    );
  }
}
