/**
 * The import station's audit key: an ECDSA P-256 key made on first use under `<home>/audit/` (private key mode 0600),
 * signing checkpoints with Node's crypto. The public key (PEM) is what an auditor outside uses to verify exports.
 */
import fs from 'node:fs';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { EcluseError } from '../../sneakernet/errors.js';
import { importHome, type KeyFiles } from '../home.js';

export interface AuditKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicPem: string;
  keyId: string;
}

export function auditDir(home: string): string {
  return importHome(home).audit;
}

export function auditKeyPaths(home: string): KeyFiles {
  return importHome(home).auditKey;
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest('hex');
}

export function publicKeyFromPem(pem: string): KeyObject {
  try {
    return createPublicKey(pem);
  } catch (e) {
    throw new EcluseError('E_KEY', `not a public key in PEM form: ${(e as Error).message}`, {}, { cause: e });
  }
}

/** Loads the audit key, making it when there is none yet (homes set up before the audit log had a key). */
export function ensureAuditKey(home: string): AuditKey {
  const p = auditKeyPaths(home);
  if (!fs.existsSync(p.priv)) {
    fs.mkdirSync(auditDir(home), { recursive: true, mode: 0o700 });
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const tmp = `${p.priv}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    fs.writeFileSync(p.pub, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
    try {
      fs.linkSync(tmp, p.priv); // never replace a key another process made meanwhile
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
  try {
    const privateKey = createPrivateKey(fs.readFileSync(p.priv));
    const publicKey = createPublicKey(privateKey);
    const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    if (!fs.existsSync(p.pub) || fs.readFileSync(p.pub, 'utf8') !== publicPem) fs.writeFileSync(p.pub, publicPem);
    return { privateKey, publicKey, publicPem, keyId: keyIdOf(publicKey) };
  } catch (e) {
    throw new EcluseError('E_KEY', `the audit key in ${p.priv} is unusable: ${(e as Error).message}`, {}, { cause: e });
  }
}

/** The public key only, without making one (verification must not create keys). */
export function loadAuditPublicKey(home: string): KeyObject | null {
  const p = auditKeyPaths(home);
  if (fs.existsSync(p.priv)) return createPublicKey(createPrivateKey(fs.readFileSync(p.priv)));
  if (fs.existsSync(p.pub)) return publicKeyFromPem(fs.readFileSync(p.pub, 'utf8'));
  return null;
}
