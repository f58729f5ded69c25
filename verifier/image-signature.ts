/**
 * Glance image signatures (what Nova checks with `verify_glance_signatures = true`, through cursive): every image
 * promoted from a bundle gets
 *   img_signature                  base64 RSA-PSS (SHA-256, MGF1 SHA-256, maximum salt) over the image bytes
 *   img_signature_hash_method      SHA-256
 *   img_signature_key_type         RSA-PSS
 *   img_signature_certificate_uuid the Barbican secret holding this station's certificate (DER)
 *
 * The key is the import station's own (`<home>/signing/image-signing.key`, made at first use, mode 0600); its
 * certificate is issued with node-forge and exported by `ecluse site cert` for the site's Barbican. Barbican names
 * the secret when it is stored, so the operator records that uuid with `ecluse site cert --uuid UUID`; until then a
 * placeholder uuid chosen at key creation is used.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import { generateKey } from '../keys/issue.js';
import { getSetting, setSetting, type Db } from './db.js';

export const SIGNATURE_HASH_METHOD = 'SHA-256';
export const SIGNATURE_KEY_TYPE = 'RSA-PSS';
export const CERT_UUID_SETTING = 'image_signing_cert_uuid';
const VALIDITY_DAYS = 3650;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface SigningPaths {
  dir: string;
  key: string;
  cert: string;
}

export function signingPaths(homeRoot: string): SigningPaths {
  const dir = path.join(homeRoot, 'signing');
  return { dir, key: path.join(dir, 'image-signing.key'), cert: path.join(dir, 'image-signing.crt') };
}

export interface ImageSigner {
  key: crypto.KeyObject;
  certPem: string;
  certUuid: string;
}

/** PEM of a self-signed certificate for the station's image-signing key (node-forge issues; Node checks). */
export function issueImageSigningCertificate(key: crypto.KeyObject, siteId: string, now = new Date()): string {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(
    crypto.createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString(),
  );
  const serial = crypto.randomBytes(16);
  serial[0] = ((serial[0] as number) & 0x7f) | 0x40;
  cert.serialNumber = serial.toString('hex');
  cert.validity.notBefore = new Date(now.getTime() - 60_000);
  cert.validity.notAfter = new Date(now.getTime() + VALIDITY_DAYS * 86_400_000);
  const subject = [
    { shortName: 'CN', value: `ecluse image signing ${siteId}`.slice(0, 64) },
    { shortName: 'O', value: 'ecluse' },
    { shortName: 'OU', value: 'image-signing' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  const pem = key.export({ type: 'pkcs1', format: 'pem' }).toString();
  cert.sign(forge.pki.privateKeyFromPem(pem), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

/** The station's image signer, made on first use (key, certificate, placeholder Barbican uuid). */
export async function imageSigner(db: Db, homeRoot: string, siteId: string): Promise<ImageSigner> {
  const p = signingPaths(homeRoot);
  if (!fs.existsSync(p.key) || !fs.existsSync(p.cert)) {
    fs.mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    const key = await generateKey();
    const certPem = issueImageSigningCertificate(key, siteId);
    // Written under temporary names and renamed, so a crash never leaves a key without its certificate.
    const tmpKey = `${p.key}.tmp-${process.pid}`;
    const tmpCert = `${p.cert}.tmp-${process.pid}`;
    fs.writeFileSync(tmpKey, key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    fs.writeFileSync(tmpCert, certPem, { mode: 0o644 });
    fs.renameSync(tmpCert, p.cert);
    fs.renameSync(tmpKey, p.key);
  }
  if (!getSetting(db, CERT_UUID_SETTING)) setSetting(db, CERT_UUID_SETTING, crypto.randomUUID());
  const key = crypto.createPrivateKey(fs.readFileSync(p.key));
  const certPem = fs.readFileSync(p.cert, 'utf8');
  // The certificate must be for this key (checked with Node's crypto, not forge).
  if (!new crypto.X509Certificate(certPem).checkPrivateKey(key)) {
    throw new Error(`${p.cert} is not the certificate of ${p.key}`);
  }
  return { key, certPem, certUuid: getSetting(db, CERT_UUID_SETTING) as string };
}

/** Records the uuid Barbican gave the certificate's secret. */
export function setCertificateUuid(db: Db, uuid: string): void {
  if (!UUID.test(uuid)) throw new Error(`"${uuid}" is not a uuid`);
  setSetting(db, CERT_UUID_SETTING, uuid.toLowerCase());
}

/** RSA-PSS (SHA-256, MGF1 SHA-256, maximum salt) signature over the bytes of `file`, base64. */
export async function signFile(key: crypto.KeyObject, file: string): Promise<string> {
  const signer = crypto.createSign('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) signer.update(chunk as Buffer);
  return signer
    .sign({
      key,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: crypto.constants.RSA_PSS_SALTLEN_MAX_SIGN,
    })
    .toString('base64');
}

/** Verifies a Glance image signature over `file` with a certificate (PEM or DER), as cursive does. */
export async function verifyFileSignature(cert: string | Buffer, file: string, signatureB64: string): Promise<boolean> {
  const verifier = crypto.createVerify('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) verifier.update(chunk as Buffer);
  return verifier.verify(
    {
      key: new crypto.X509Certificate(cert).publicKey,
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
      saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO,
    },
    Buffer.from(signatureB64, 'base64'),
  );
}

/** The four img_signature* properties for the image whose bytes are in `file` (a local, already verified file). */
export async function imageSignatureProperties(
  site: { db: Db; home: { root: string }; siteId: string },
  file: string,
  /** The signature already computed over the same bytes while they were staged (HashPool with the signing key). */
  precomputed?: string,
): Promise<Record<string, string>> {
  const signer = await imageSigner(site.db, site.home.root, site.siteId);
  return {
    img_signature: precomputed ?? (await signFile(signer.key, file)),
    img_signature_hash_method: SIGNATURE_HASH_METHOD,
    img_signature_key_type: SIGNATURE_KEY_TYPE,
    img_signature_certificate_uuid: signer.certUuid,
  };
}
