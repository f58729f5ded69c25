/**
 * The offline key ceremony: `ecluse keys init` makes the site root and the first signers, `ecluse keys add-signer`
 * issues another signer with the root key. KEYDIR layout:
 *
 *   trust/root.pem, trust/trust.json      the public trust anchors, installed inside (0755 / 0644)
 *   root/key.pem, root/cert.pem           the root private key (ceremonies only, 0600) and certificate
 *   signers/<name>/key.pem                a signer's private key (0600)
 *   signers/<name>/cert.pem               its certificate, issued by the root
 *   signers/<name>/signer.json            {"name","keyId","notBefore","notAfter"}
 *
 * Private keys are encrypted PKCS#8 under the passphrase, or plain when it is null (`--no-passphrase`).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError, asEcluseError } from '../sneakernet/errors.js';
import {
  DEFAULT_ROOT_VALIDITY_DAYS,
  DEFAULT_SIGNER_VALIDITY_DAYS,
  generateKey,
  issueRootCertificate,
  issueSignerCertificate,
} from './issue.js';
import { keyIdOf } from './keyid.js';
import { readPrivateKey, writePrivateKey } from './keyfile.js';
import { ROOT_CERT_FILE, TRUST_FILE, type TrustFile } from './trust.js';
import { checkId } from '../sneakernet/check-ids.js';

import { CERT_FILE, KEY_FILE, SIGNER_FILE, SIGNER_NAME_PATTERN } from './keydir-files.js';

export { CERT_FILE, KEY_FILE, SIGNER_FILE, SIGNER_NAME_PATTERN };

/** What the ceremony reports about one signer. */
export interface SignerRecord {
  name: string;
  dir: string;
  keyId: string;
  notAfter: string;
}

export interface InitKeysResult {
  trustDir: string;
  rootDir: string;
  rootKeyId: string;
  signers: SignerRecord[];
}

export interface InitKeysOptions {
  out: string;
  signers: string[];
  passphrase: string | null;
  signerValidityDays?: number;
  rootValidityDays?: number;
  now?: Date;
  /** CN of the root certificate is "<siteName> root"; "écluse site root" when absent. */
  siteName?: string;
}

export interface AddSignerOptions {
  keyDir: string;
  name: string;
  /** Unlocks the root key (if encrypted) and encrypts the new signer key (null: left plain). */
  passphrase: string | null;
  validityDays?: number;
  now?: Date;
}

function checkNames(names: string[]): void {
  const seen = new Set<string>();
  for (const name of names) {
    if (!SIGNER_NAME_PATTERN.test(name)) {
      throw new EcluseError('E_USAGE', `signer name "${name}" is invalid: use a-z, 0-9, _ and - (at most 63)`, {
        check: checkId('signer-name'),
      });
    }
    if (seen.has(name))
      throw new EcluseError('E_USAGE', `signer "${name}" is named twice`, { check: checkId('signer-name') });
    seen.add(name);
  }
}

function checkDays(days: number, what: string): number {
  if (!Number.isInteger(days) || days < 1 || days > 36_500) {
    throw new EcluseError('E_USAGE', `${what} must be a whole number of days between 1 and 36500`, {
      check: checkId('usage'),
    });
  }
  return days;
}

/** Creates a folder that must not exist yet (E_ALREADY_INITIALIZED otherwise), with an exact mode. */
function mkdirFresh(dir: string, mode: number): void {
  try {
    fs.mkdirSync(dir, { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new EcluseError('E_ALREADY_INITIALIZED', `${dir} already exists; refusing to overwrite keys`, {
        check: checkId('keydir'),
      });
    }
    throw asEcluseError(e);
  }
  fs.chmodSync(dir, mode);
}

function writeNew(file: string, text: string, mode: number): void {
  fs.writeFileSync(file, text, { mode, flag: 'wx' });
  fs.chmodSync(file, mode);
}

function writeSigner(opts: {
  keyDir: string;
  name: string;
  signerKey: crypto.KeyObject;
  rootKey: crypto.KeyObject;
  rootCertPem: string;
  passphrase: string | null;
  days: number;
  now: Date;
}): SignerRecord {
  const signersDir = path.join(opts.keyDir, 'signers');
  if (!fs.existsSync(signersDir)) mkdirFresh(signersDir, 0o700);
  const dir = path.join(signersDir, opts.name);
  mkdirFresh(dir, 0o700);
  const certPem = issueSignerCertificate({ ...opts, days: opts.days });
  const cert = new crypto.X509Certificate(certPem);
  const keyId = keyIdOf(opts.signerKey);
  const record = {
    name: opts.name,
    keyId,
    notBefore: new Date(Date.parse(cert.validFrom)).toISOString(),
    notAfter: new Date(Date.parse(cert.validTo)).toISOString(),
  };
  writePrivateKey(path.join(dir, KEY_FILE), opts.signerKey, opts.passphrase);
  writeNew(path.join(dir, CERT_FILE), certPem, 0o644);
  writeNew(path.join(dir, SIGNER_FILE), `${JSON.stringify(record, null, 2)}\n`, 0o644);
  return { name: opts.name, dir, keyId, notAfter: record.notAfter };
}

/** `ecluse keys init`: a new root and its first signers under `out`. Refuses to touch an existing trust/ or root/. */
export async function initKeys(opts: InitKeysOptions): Promise<InitKeysResult> {
  checkNames(opts.signers);
  const rootDays = checkDays(opts.rootValidityDays ?? DEFAULT_ROOT_VALIDITY_DAYS, 'the root validity');
  const signerDays = checkDays(opts.signerValidityDays ?? DEFAULT_SIGNER_VALIDITY_DAYS, 'the signer validity');
  const now = opts.now ?? new Date();
  const out = path.resolve(opts.out);
  const trustDir = path.join(out, 'trust');
  const rootDir = path.join(out, 'root');
  for (const dir of [trustDir, rootDir, ...opts.signers.map((n) => path.join(out, 'signers', n))]) {
    if (fs.existsSync(dir)) {
      throw new EcluseError('E_ALREADY_INITIALIZED', `${dir} already exists; refusing to overwrite keys`, {
        check: checkId('keydir'),
      });
    }
  }
  try {
    const [rootKey, ...signerKeys] = await Promise.all([generateKey(), ...opts.signers.map(() => generateKey())]);
    if (!rootKey)
      throw new EcluseError('E_INTERNAL', 'the ceremony generated no root key (a bug: report it with this line)');
    if (!fs.existsSync(out)) fs.mkdirSync(out, { recursive: true, mode: 0o700 });
    mkdirFresh(rootDir, 0o700);
    const rootCertPem = issueRootCertificate({
      rootKey,
      name: opts.siteName === undefined ? undefined : `${opts.siteName} root`,
      now,
      days: rootDays,
    });
    writePrivateKey(path.join(rootDir, KEY_FILE), rootKey, opts.passphrase);
    writeNew(path.join(rootDir, CERT_FILE), rootCertPem, 0o644);
    const signers = opts.signers.map((name, i) =>
      writeSigner({
        keyDir: out,
        name,
        signerKey: signerKeys[i] as crypto.KeyObject,
        rootKey,
        rootCertPem,
        passphrase: opts.passphrase,
        days: signerDays,
        now,
      }),
    );
    // The public anchors last: a half-finished ceremony leaves nothing that looks installable.
    const rootKeyId = keyIdOf(rootKey);
    const trust: TrustFile = { formatVersion: 1, rootVersion: 1, rootKeyId, createdAt: now.toISOString() };
    mkdirFresh(trustDir, 0o755);
    writeNew(path.join(trustDir, ROOT_CERT_FILE), rootCertPem, 0o644);
    writeNew(path.join(trustDir, TRUST_FILE), `${JSON.stringify(trust, null, 2)}\n`, 0o644);
    return { trustDir, rootDir, rootKeyId, signers };
  } catch (e) {
    throw asEcluseError(e);
  }
}

/** `ecluse keys add-signer`: issues one more signer with the root key held in `keyDir/root`. */
export async function addSigner(opts: AddSignerOptions): Promise<SignerRecord> {
  checkNames([opts.name]);
  const days = checkDays(opts.validityDays ?? DEFAULT_SIGNER_VALIDITY_DAYS, 'the signer validity');
  const keyDir = path.resolve(opts.keyDir);
  const rootDir = path.join(keyDir, 'root');
  if (!fs.existsSync(path.join(rootDir, KEY_FILE)) || !fs.existsSync(path.join(rootDir, CERT_FILE))) {
    throw new EcluseError('E_NOT_INITIALIZED', `${keyDir} holds no root key: run "ecluse keys init" first`, {
      check: checkId('keydir'),
    });
  }
  const signerDir = path.join(keyDir, 'signers', opts.name);
  if (fs.existsSync(signerDir)) {
    throw new EcluseError('E_ALREADY_INITIALIZED', `signer ${opts.name} already exists in ${keyDir}`, {
      check: checkId('keydir'),
    });
  }
  const rootKey = await readPrivateKey(path.join(rootDir, KEY_FILE), () => Promise.resolve(opts.passphrase));
  try {
    const rootCertPem = fs.readFileSync(path.join(rootDir, CERT_FILE), 'utf8');
    if (!new crypto.X509Certificate(rootCertPem).checkPrivateKey(rootKey)) {
      throw new EcluseError('E_KEY', `${rootDir}: the root certificate does not match the root key`, {
        check: checkId('key'),
      });
    }
    const signerKey = await generateKey();
    return writeSigner({
      keyDir,
      name: opts.name,
      signerKey,
      rootKey,
      rootCertPem,
      passphrase: opts.passphrase,
      days,
      now: opts.now ?? new Date(),
    });
  } catch (e) {
    throw asEcluseError(e);
  }
}
