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
import { createRequire } from 'node:module';
import type forgeModule from 'node-forge';
import { generateKey } from '../keys/issue.js';
import { getSetting, setSetting, type Db } from './db.js';
import { EcluseError } from '../sneakernet/errors.js';
import { importHome, type ImportHome } from './home.js';

export const SIGNATURE_HASH_METHOD = 'SHA-256';
export const SIGNATURE_KEY_TYPE = 'RSA-PSS';
export const CERT_UUID_SETTING = 'image_signing_cert_uuid';
const VALIDITY_DAYS = 3650;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type SigningPaths = ImportHome['signing'];

/** node-forge, loaded the first time it is needed: issuing the signing certificate. */
let loadedForge: typeof forgeModule | undefined;
function forge(): typeof forgeModule {
  return (loadedForge ??= createRequire(import.meta.url)('node-forge') as typeof forgeModule);
}

/**
 * The parts of node-forge an image signature needs (EMSA-PSS, MGF1, SHA-256), loaded alone the first time one is made:
 * every import signs its images, and the whole of node-forge is 42 files and ~9.5 MiB resident, these 12 files ~3 MiB.
 */
let loadedPss: typeof forgeModule | undefined;
function pssForge(): typeof forgeModule {
  if (loadedForge) return loadedForge;
  if (!loadedPss) {
    const load = createRequire(import.meta.url);
    for (const part of ['pss', 'mgf1', 'sha256']) load(`node-forge/lib/${part}`);
    loadedPss = load('node-forge/lib/forge') as typeof forgeModule;
  }
  return loadedPss;
}

export function signingPaths(homeRoot: string): SigningPaths {
  return importHome(homeRoot).signing;
}

export interface ImageSigner {
  key: crypto.KeyObject;
  certPem: string;
  certUuid: string;
}

/** PEM of a self-signed certificate for the station's image-signing key (node-forge issues; Node checks). */
export function issueImageSigningCertificate(key: crypto.KeyObject, siteId: string, now = new Date()): string {
  const cert = forge().pki.createCertificate();
  cert.publicKey = forge().pki.publicKeyFromPem(
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
  cert.sign(forge().pki.privateKeyFromPem(pem), forge().md.sha256.create());
  return forge().pki.certificateToPem(cert);
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
    throw new EcluseError(
      'E_KEY',
      `${p.cert} is not the certificate of ${p.key}: put back the pair made together, or remove both files to make a new pair (then export the new certificate with "ecluse site cert" for Barbican)`,
      { check: 'image-signing-key' },
    );
  }
  return { key, certPem, certUuid: getSetting(db, CERT_UUID_SETTING) as string };
}

/** Records the uuid Barbican gave the certificate's secret. */
export function setCertificateUuid(db: Db, uuid: string): void {
  if (!UUID.test(uuid)) {
    throw new EcluseError('E_USAGE', `"${uuid}" is not a uuid: give the uuid at the end of the Barbican secret's href`);
  }
  setSetting(db, CERT_UUID_SETTING, uuid.toLowerCase());
}

/** What forge's EMSA-PSS encoder needs of a message digest: the digest, already computed (by OpenSSL). */
interface ComputedDigest {
  digest(): forgeModule.util.ByteStringBuffer;
}

/**
 * RSA-PSS (SHA-256, MGF1 SHA-256, maximum salt) signature, base64, of bytes whose SHA-256 is `sha256` (hex), computed
 * by whoever already read them: importing hashes each image once, and the signature needs no second pass over it.
 * Node's crypto only signs data it hashes itself, so the EMSA-PSS encoding (RFC 8017 9.1.1) is node-forge's (loaded
 * here, after the image's bytes were staged and their buffers returned), its salt from Node's CSPRNG, and the RSA
 * private-key operation on the encoded message is OpenSSL's.
 */
export function signSha256Digest(key: crypto.KeyObject, sha256: string): string {
  if (!/^[0-9a-f]{64}$/.test(sha256))
    throw new EcluseError(
      'E_INTERNAL',
      `an image signature was asked over "${sha256}", not a sha256 (a bug: report it with this line)`,
    );
  const modulusBits = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType !== 'rsa' || !modulusBits)
    throw new EcluseError(
      'E_KEY',
      "the image-signing key is not an RSA key: remove the signing folder's key and certificate to make a new pair",
      { check: 'image-signing-key' },
    );
  const f = pssForge();
  const hashLength = 32;
  const encodedLength = Math.ceil((modulusBits - 1) / 8);
  const pss = f.pss.create({
    md: f.md.sha256.create(),
    mgf: f.mgf.mgf1.create(f.md.sha256.create()) as unknown, // typed `any` by @types/node-forge
    // RSA_PSS_SALTLEN_MAX_SIGN: the longest salt the modulus leaves room for.
    saltLength: encodedLength - hashLength - 2,
    prng: { getBytesSync: (n: number) => crypto.randomBytes(n).toString('binary') },
  }) as { encode(md: ComputedDigest, modulusBits: number): string };
  const computed: ComputedDigest = {
    digest: () => f.util.createBuffer(Buffer.from(sha256, 'hex').toString('binary')),
  };
  const encoded = Buffer.from(pss.encode(computed, modulusBits), 'binary');
  // The encoded message is ceil((bits - 1) / 8) octets: one short of the modulus when bits - 1 is a multiple of 8.
  const block = Buffer.concat([Buffer.alloc(Math.ceil(modulusBits / 8) - encoded.length), encoded]);
  return crypto.privateEncrypt({ key, padding: crypto.constants.RSA_NO_PADDING }, block).toString('base64');
}

/** The signature of `signSha256Digest` over the bytes of `file`. */
export async function signFile(key: crypto.KeyObject, file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return signSha256Digest(key, hash.digest('hex'));
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
  /** The sha256 of the file's bytes when already computed (as they were staged): the file is then not read again. */
  sha256?: string,
): Promise<Record<string, string>> {
  const signer = await imageSigner(site.db, site.home.root, site.siteId);
  return {
    img_signature: sha256 ? signSha256Digest(signer.key, sha256) : await signFile(signer.key, file),
    img_signature_hash_method: SIGNATURE_HASH_METHOD,
    img_signature_key_type: SIGNATURE_KEY_TYPE,
    img_signature_certificate_uuid: signer.certUuid,
  };
}
