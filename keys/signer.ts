/**
 * A signer loaded for signing statements: its private key (unlocked only if encrypted), its certificate, and
 * `signStatement`, which makes a Sigstore bundle (DSSE envelope, payload type PAYLOAD_TYPE) with no Fulcio, no Rekor
 * and no network: the bundle carries the SPKI public key and, as its hint, the key id.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { bundleToJSON } from '@sigstore/bundle';
import type { Signature, Signer } from '@sigstore/sign';
import { z } from 'zod';
import { EcluseError } from '../sneakernet/errors.js';
import { PAYLOAD_TYPE } from '../sneakernet/statement.js';
import { CERT_FILE, KEY_FILE, SIGNER_FILE, SIGNER_NAME_PATTERN } from './keydir-files.js';
import { keyIdOf } from './keyid.js';
import { readPrivateKey } from './keyfile.js';
import { checkId } from '../sneakernet/check-ids.js';

export interface LoadedSigner {
  name: string;
  keyId: string;
  certificatePem: string;
  /** Signs `payload` (the encoded statement); resolves to the JSON text of the Sigstore bundle. */
  signStatement(payload: Buffer): Promise<string>;
}

const signerFileSchema = z.object({ name: z.string().regex(SIGNER_NAME_PATTERN) });

function keyError(message: string): EcluseError {
  return new EcluseError('E_KEY', message, { check: checkId('key') });
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw keyError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

/** A Sigstore `Signer` over a local private key; `data` is the DSSE pre-authentication encoding. */
export function localSigner(privateKey: crypto.KeyObject, publicKeyPem: string, keyId: string): Signer {
  return {
    sign: (data: Buffer): Promise<Signature> =>
      Promise.resolve({
        signature: crypto.sign('sha256', data, privateKey),
        key: { $case: 'publicKey', publicKey: publicKeyPem, hint: keyId },
      }),
  };
}

/** Signs `payload` as a one-signature DSSE Sigstore bundle (JSON text) with `privateKey`, hinted by its key id. */
export async function signDsse(privateKey: crypto.KeyObject, payloadType: string, payload: Buffer): Promise<string> {
  const publicKey = crypto.createPublicKey(privateKey);
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const builder = await dsseBuilder(localSigner(privateKey, pem, keyIdOf(publicKey)));
  return JSON.stringify(bundleToJSON(await builder.create({ data: payload, type: payloadType })));
}

/**
 * A DSSE bundle builder without witnesses (no Rekor, no timestamp authority: offline). @sigstore/sign is loaded on
 * first use, and only its DSSE bundler: the package's index also loads the Fulcio, Rekor and TSA clients and their HTTP
 * stack (about 0.1 s of every export, for code that never runs offline). The package has no `exports` map, so the deep
 * path resolves; a version that adds one fails every signing test, not silently.
 */
async function dsseBuilder(signer: Signer) {
  // A CommonJS module: its exports are `default` (Node names the others too, esbuild's bundle does not).
  const { default: dsse } = await import('@sigstore/sign/dist/bundler/dsse.js');
  return new dsse.DSSEBundleBuilder({ signer, witnesses: [] });
}

/**
 * Loads the signer in `dir` (`signers/<name>/` of a KEYDIR). `passphrase` is called only when the key is encrypted.
 * Refuses (E_KEY) a certificate that does not match the key, or that is expired or not yet valid at `now`.
 */
export async function loadSigner(
  dir: string,
  passphrase: () => Promise<string | null>,
  opts: { now?: Date } = {},
): Promise<LoadedSigner> {
  let name: string;
  try {
    name = signerFileSchema.parse(JSON.parse(readText(path.join(dir, SIGNER_FILE)))).name;
  } catch (e) {
    if (e instanceof EcluseError) throw e;
    throw keyError(`${path.join(dir, SIGNER_FILE)} is malformed`);
  }
  const certificatePem = readText(path.join(dir, CERT_FILE));
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(certificatePem);
  } catch {
    throw keyError(`${path.join(dir, CERT_FILE)} is not an X.509 certificate`);
  }
  const privateKey = await readPrivateKey(path.join(dir, KEY_FILE), passphrase);
  if (!cert.checkPrivateKey(privateKey)) throw keyError(`signer ${name}: the certificate does not match the key`);
  const now = (opts.now ?? new Date()).getTime();
  const notBefore = Date.parse(cert.validFrom);
  const notAfter = Date.parse(cert.validTo);
  if (!(now <= notAfter)) throw keyError(`signer ${name}: the certificate expired on ${cert.validTo}`);
  if (!(now >= notBefore)) throw keyError(`signer ${name}: the certificate is not valid until ${cert.validFrom}`);
  const publicKey = crypto.createPublicKey(privateKey);
  const keyId = keyIdOf(publicKey);
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const signer = localSigner(privateKey, publicKeyPem, keyId);
  return {
    name,
    keyId,
    certificatePem,
    async signStatement(payload: Buffer): Promise<string> {
      const bundle = await (await dsseBuilder(signer)).create({ data: payload, type: PAYLOAD_TYPE });
      return JSON.stringify(bundleToJSON(bundle));
    },
  };
}
