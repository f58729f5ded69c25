/**
 * Root rotation, as TUF rotates its root: version N+1 of the site root is announced by a root document signed by the
 * root of version N **and** by the new root itself, versions consecutive. The ceremony (`ecluse keys rotate-root`)
 * writes `KEYDIR/trust/root-<v>.<key-id>.sigstore.json` (one file per signature, same payload), re-certifies the
 * existing signers under the new root (never a revoked one) and re-signs the revocation list. Every export carries all of these files; the
 * import station walks them from the version it holds, one version at a time, and pins each new root it can verify.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EcluseError } from '../sneakernet/errors.js';
import { KEY_ID_PATTERN, ROOT_DOCUMENT_PATTERN } from '../sneakernet/layout.js';
import { LIMITS } from '../sneakernet/limits.js';
import { parseBoundedJson } from '../sneakernet/statement.js';
import { CERT_FILE, KEY_FILE, SIGNER_FILE } from './ceremony.js';
import { readSignatureFile } from './envelope.js';
import {
  DEFAULT_ROOT_VALIDITY_DAYS,
  DEFAULT_SIGNER_VALIDITY_DAYS,
  generateKey,
  issueRootCertificate,
  issueSignerCertificate,
} from './issue.js';
import { exportPrivateKey, readPrivateKey } from './keyfile.js';
import { keyIdOf } from './keyid.js';
import { readKeyDirRevocations, REVOCATIONS_FILE, signRevocationList } from './revocation.js';
import { signDsse } from './signer.js';
import { ROOT_CERT_FILE, TRUST_FILE, type TrustAnchors, type TrustFile } from './trust.js';
import { cryptoValid } from './verify.js';
import { isoSeconds } from '../sneakernet/statement.js';
import { checkId } from '../sneakernet/check-ids.js';

export const ROOT_PAYLOAD_TYPE = 'application/vnd.ecluse.root+json';
export const ROOT_FILE_PATTERN = ROOT_DOCUMENT_PATTERN;
const ROOT_TYPE = 'https://ecluse.dev/root/v1';

export const rootDocumentSchema = z.strictObject({
  _type: z.literal(ROOT_TYPE),
  version: z.number().int().min(2).max(999_999),
  previousKeyId: z.string().regex(KEY_ID_PATTERN),
  rootKeyId: z.string().regex(KEY_ID_PATTERN),
  certificate: z.string().max(LIMITS.certificateFileBytes),
  issued: z.iso.datetime({ offset: false, precision: 0 }),
});
export type RootDocument = z.infer<typeof rootDocumentSchema>;

export const rootFileName = (version: number, keyId: string) => `root-${version}.${keyId}.sigstore.json`;

function rotationError(code: 'E_SIGNATURE' | 'E_FORMAT', message: string): EcluseError {
  return new EcluseError(code, message, { check: checkId('root-rotation') });
}

/**
 * From `anchors` (the root held), follows the root documents in `files` (name → bytes) version by version and returns
 * every newer root it can verify, in order (empty when none is newer). A newer version that cannot be reached
 * consecutively, or a document not signed by both roots, is refused.
 */
export function verifyRootChain(files: ReadonlyMap<string, Buffer>, anchors: TrustAnchors, at: Date): TrustAnchors[] {
  const offered = new Set<number>();
  for (const name of files.keys()) {
    const m = ROOT_FILE_PATTERN.exec(name);
    if (m) offered.add(Number(m[1]));
  }
  const chain: TrustAnchors[] = [];
  let current = anchors;
  for (;;) {
    const v = current.rootVersion + 1;
    if (!offered.has(v)) break;
    const byOld = files.get(rootFileName(v, current.rootKeyId));
    if (!byOld)
      throw rotationError('E_SIGNATURE', `root version ${v} on the media is not signed by root version ${v - 1}`);
    const oldSig = readSignatureFile(
      rootFileName(v, current.rootKeyId).replace(/^root-[0-9]+\./, ''),
      byOld,
      ROOT_PAYLOAD_TYPE,
    );
    if (!cryptoValid(oldSig, current.root.publicKey)) {
      throw rotationError('E_SIGNATURE', `root version ${v}: the signature of root version ${v - 1} does not verify`);
    }
    const parsed = rootDocumentSchema.safeParse(
      parseBoundedJson(oldSig.payload, `root version ${v}`, LIMITS.certificateFileBytes * 2),
    );
    if (!parsed.success) throw rotationError('E_FORMAT', `root version ${v} on the media is malformed`);
    const doc = parsed.data;
    if (doc.version !== v || doc.previousKeyId !== current.rootKeyId) {
      throw rotationError('E_FORMAT', `root version ${v} does not follow root version ${v - 1}`);
    }
    let cert: crypto.X509Certificate;
    try {
      cert = new crypto.X509Certificate(doc.certificate);
    } catch {
      throw rotationError('E_FORMAT', `root version ${v}: the certificate is unreadable`);
    }
    if (!cert.ca || !cert.verify(cert.publicKey) || keyIdOf(cert.publicKey) !== doc.rootKeyId) {
      throw rotationError(
        'E_FORMAT',
        `root version ${v}: the certificate is not a self-signed CA for key ${doc.rootKeyId.slice(0, 12)}`,
      );
    }
    if (Date.parse(cert.validTo) < at.getTime())
      throw rotationError('E_FORMAT', `root version ${v}: the certificate has expired`);
    const byNew = files.get(rootFileName(v, doc.rootKeyId));
    if (!byNew)
      throw rotationError('E_SIGNATURE', `root version ${v} on the media is not signed by the new root itself`);
    const newSig = readSignatureFile(`${doc.rootKeyId}.sigstore.json`, byNew, ROOT_PAYLOAD_TYPE);
    if (!newSig.payload.equals(oldSig.payload) || !cryptoValid(newSig, cert.publicKey)) {
      throw rotationError('E_SIGNATURE', `root version ${v}: the new root's own signature does not verify`);
    }
    current = { root: cert, rootKeyId: doc.rootKeyId, rootVersion: v };
    chain.push(current);
  }
  const beyond = [...offered].filter((v) => v > current.rootVersion);
  if (beyond.length > 0) {
    throw rotationError(
      'E_FORMAT',
      `root version ${Math.min(...beyond)} is on the media but version ${current.rootVersion + 1} is not`,
    );
  }
  return chain;
}

/** Every root document file of a KEYDIR's trust folder, to carry on the media. */
export function keyDirRootFiles(keyDir: string): Array<{ name: string; bytes: Buffer }> {
  const dir = path.join(keyDir, 'trust');
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((n) => ROOT_FILE_PATTERN.test(n))
    .sort()
    .map((name) => ({ name, bytes: fs.readFileSync(path.join(dir, name)) }));
}

function writeAtomic(file: string, data: string | Buffer, mode: number): void {
  fs.writeFileSync(`${file}.tmp`, data, { mode });
  fs.renameSync(`${file}.tmp`, file);
}

/** The ceremony: a new root for KEYDIR, announced by a document signed by the old and the new root. */
export async function rotateRoot(o: {
  keyDir: string;
  anchors: TrustAnchors;
  passphrase: () => Promise<string | null>;
  now?: Date;
}): Promise<{ version: number; rootKeyId: string; signers: string[]; notCertified: string[] }> {
  const now = o.now ?? new Date();
  const rootDir = path.join(o.keyDir, 'root');
  const pass = await o.passphrase();
  const oldKey = await readPrivateKey(path.join(rootDir, KEY_FILE), () => Promise.resolve(pass));
  if (keyIdOf(crypto.createPublicKey(oldKey)) !== o.anchors.rootKeyId) {
    throw new EcluseError('E_KEY', `${rootDir}/${KEY_FILE} is not the key of the current site root`);
  }
  const newKey = await generateKey();
  const rootKeyId = keyIdOf(newKey);
  const version = o.anchors.rootVersion + 1;
  const certificate = issueRootCertificate({ rootKey: newKey, now, days: DEFAULT_ROOT_VALIDITY_DAYS });
  const doc: RootDocument = {
    _type: ROOT_TYPE,
    version,
    previousKeyId: o.anchors.rootKeyId,
    rootKeyId,
    certificate,
    issued: isoSeconds(now),
  };
  const payload = Buffer.from(JSON.stringify(doc));
  const trustDir = path.join(o.keyDir, 'trust');
  // Everything is computed (and signed) before anything is written: a failure leaves the key folder as it was.
  const byOld = await signDsse(oldKey, ROOT_PAYLOAD_TYPE, payload);
  const byNew = await signDsse(newKey, ROOT_PAYLOAD_TYPE, payload);
  const signersDir = path.join(o.keyDir, 'signers');
  const revocations = readKeyDirRevocations(o.keyDir, o.anchors)?.list;
  const revokedIds = new Set((revocations?.revoked ?? []).map((r) => r.keyId));
  // A revoked signer is never certified again: its folder keeps the certificate of the old root (refused inside, as
  // the key stays on the revocation list the new root signs).
  const all = fs.existsSync(signersDir) ? fs.readdirSync(signersDir).sort() : [];
  const certificateOf = (name: string) =>
    new crypto.X509Certificate(fs.readFileSync(path.join(signersDir, name, CERT_FILE)));
  const revoked = all.filter((name) => revokedIds.has(keyIdOf(certificateOf(name).publicKey)));
  const signers = all.filter((name) => !revoked.includes(name));
  const recertified = signers.map((name) => {
    // Signers keep their keys; their certificates are issued again by the new root.
    const dir = path.join(signersDir, name);
    const old = certificateOf(name);
    const pem = issueSignerCertificate({
      rootKey: newKey,
      rootCertPem: certificate,
      signerKey: old.publicKey,
      name,
      now,
      days: DEFAULT_SIGNER_VALIDITY_DAYS,
    });
    const record = JSON.parse(fs.readFileSync(path.join(dir, SIGNER_FILE), 'utf8')) as Record<string, unknown>;
    const notAfter = new Date(new crypto.X509Certificate(pem).validTo).toISOString();
    return { dir, pem, record: `${JSON.stringify({ ...record, notBefore: now.toISOString(), notAfter }, null, 2)}\n` };
  });
  const revocationFile = revocations
    ? await signRevocationList(newKey, {
        ...revocations,
        rootKeyId,
        version: revocations.version + 1,
        issued: doc.issued,
      })
    : null;
  const newKeyPem = exportPrivateKey(newKey, pass);

  for (const r of recertified) {
    writeAtomic(path.join(r.dir, CERT_FILE), r.pem, 0o644);
    writeAtomic(path.join(r.dir, SIGNER_FILE), r.record, 0o644);
  }
  if (revocationFile) writeAtomic(path.join(trustDir, REVOCATIONS_FILE), revocationFile, 0o644);
  fs.renameSync(path.join(rootDir, KEY_FILE), path.join(rootDir, `key-v${o.anchors.rootVersion}.pem`));
  fs.renameSync(path.join(rootDir, CERT_FILE), path.join(rootDir, `cert-v${o.anchors.rootVersion}.pem`));
  writeAtomic(path.join(rootDir, KEY_FILE), newKeyPem, 0o600);
  writeAtomic(path.join(rootDir, CERT_FILE), certificate, 0o644);
  writeAtomic(path.join(trustDir, rootFileName(version, o.anchors.rootKeyId)), byOld, 0o644);
  writeAtomic(path.join(trustDir, rootFileName(version, rootKeyId)), byNew, 0o644);
  const trust: TrustFile = { formatVersion: 1, rootVersion: version, rootKeyId, createdAt: now.toISOString() };
  writeAtomic(path.join(trustDir, ROOT_CERT_FILE), certificate, 0o644);
  writeAtomic(path.join(trustDir, TRUST_FILE), `${JSON.stringify(trust, null, 2)}\n`, 0o644);
  return { version, rootKeyId, signers, notCertified: revoked };
}
