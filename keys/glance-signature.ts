/**
 * Glance image signatures, checked with Node's crypto only (the certificates and properties come from outside):
 *   img_signature                  base64 signature over the image bytes
 *   img_signature_hash_method      SHA-224 | SHA-256 | SHA-384 | SHA-512
 *   img_signature_key_type         RSA-PSS (MGF1 with the same hash; any salt length) | DSA | ECC_<curve> (ECDSA, DER)
 *   img_signature_certificate_uuid the key manager secret holding the signer's X.509 certificate
 * as cursive (Nova, Cinder, Glance) verifies them. Used by both stations: the export station when it fetches an image
 * from an outside Glance (against certificates pinned by uuid in the feed), the import station when it re-checks the
 * evidence (against the keys or certificates pinned in the policy). A key is never taken from the image.
 *
 * Refusals: E_VENDOR_SIGNATURE (incomplete or malformed signature properties, a key type that does not fit the key,
 * a signature that does not verify), E_VENDOR_UNTRUSTED (a certificate not pinned, or outside its validity).
 */
import crypto from 'node:crypto';
import { EcluseError } from '../sneakernet/errors.js';
import {
  EVIDENCE_GLANCE_SIGNATURE_BYTES,
  GLANCE_HASH_METHODS,
  GLANCE_IMAGE_ID,
  GLANCE_KEY_TYPES,
} from '../sneakernet/evidence.js';
import { keyIdOf } from './keyid.js';
import { checkId } from '../sneakernet/check-ids.js';

export type GlanceHashMethod = (typeof GLANCE_HASH_METHODS)[number];
export type GlanceKeyType = (typeof GLANCE_KEY_TYPES)[number];

export const SIGNATURE_PROPERTIES = [
  'img_signature',
  'img_signature_hash_method',
  'img_signature_key_type',
  'img_signature_certificate_uuid',
] as const;

export interface GlanceSignature {
  /** base64, as published. */
  value: string;
  hashMethod: GlanceHashMethod;
  keyType: GlanceKeyType;
  /** Lowercase. */
  certificateUuid: string;
}

const HASHES: Record<GlanceHashMethod, string> = {
  'SHA-224': 'sha224',
  'SHA-256': 'sha256',
  'SHA-384': 'sha384',
  'SHA-512': 'sha512',
};

const CURVES: Partial<Record<GlanceKeyType, string>> = {
  ECC_SECT571K1: 'sect571k1',
  ECC_SECT409K1: 'sect409k1',
  ECC_SECT571R1: 'sect571r1',
  ECC_SECT409R1: 'sect409r1',
  ECC_SECP384R1: 'secp384r1',
  ECC_SECP521R1: 'secp521r1',
};

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function bad(what: string, why: string): EcluseError {
  return new EcluseError('E_VENDOR_SIGNATURE', `${what}: ${why}`, { check: checkId('vendor-signature') });
}

/**
 * The image's signature from its properties: null when it carries none of the four; E_VENDOR_SIGNATURE when it
 * carries only some, or values cursive would not accept.
 */
export function readGlanceSignature(props: Readonly<Record<string, string>>, what: string): GlanceSignature | null {
  const present = SIGNATURE_PROPERTIES.filter((k) => props[k] !== undefined);
  if (present.length === 0) return null;
  if (present.length < SIGNATURE_PROPERTIES.length) {
    const missing = SIGNATURE_PROPERTIES.filter((k) => props[k] === undefined);
    throw bad(what, `the image signature is incomplete (no ${missing.join(', ')})`);
  }
  const value = (props.img_signature ?? '').replace(/\s+/g, '');
  const hashMethod = props.img_signature_hash_method ?? '';
  const keyType = props.img_signature_key_type ?? '';
  const certificateUuid = props.img_signature_certificate_uuid ?? '';
  if (value === '' || !BASE64.test(value) || Buffer.byteLength(value, 'base64') > EVIDENCE_GLANCE_SIGNATURE_BYTES) {
    throw bad(what, `img_signature is not base64 of at most ${EVIDENCE_GLANCE_SIGNATURE_BYTES} bytes`);
  }
  if (!(GLANCE_HASH_METHODS as readonly string[]).includes(hashMethod)) {
    throw bad(what, `img_signature_hash_method ${JSON.stringify(hashMethod.slice(0, 40))} is not supported`);
  }
  if (!(GLANCE_KEY_TYPES as readonly string[]).includes(keyType)) {
    throw bad(what, `img_signature_key_type ${JSON.stringify(keyType.slice(0, 40))} is not supported`);
  }
  if (!GLANCE_IMAGE_ID.test(certificateUuid)) throw bad(what, 'img_signature_certificate_uuid is not a UUID');
  return {
    value,
    hashMethod: hashMethod as GlanceHashMethod,
    keyType: keyType as GlanceKeyType,
    certificateUuid: certificateUuid.toLowerCase(),
  };
}

/** True when `key` is of the kind `keyType` names (RSA for RSA-PSS, DSA, EC on the named curve). */
export function keyFits(key: crypto.KeyObject, keyType: GlanceKeyType): boolean {
  if (keyType === 'RSA-PSS') return key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss';
  if (keyType === 'DSA') return key.asymmetricKeyType === 'dsa';
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === CURVES[keyType];
}

/** A verifier fed the image bytes as they stream (one per candidate key), checked at the end. */
export interface StreamingVerifier {
  update(chunk: Buffer): void;
  verify(key: crypto.KeyObject): boolean;
}

export function streamingVerifier(sig: GlanceSignature): StreamingVerifier {
  const v = crypto.createVerify(HASHES[sig.hashMethod]);
  const signature = Buffer.from(sig.value, 'base64');
  return {
    update: (chunk) => void v.update(chunk),
    verify(key) {
      try {
        if (sig.keyType === 'RSA-PSS') {
          return v.verify(
            { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO },
            signature,
          );
        }
        return v.verify({ key, dsaEncoding: 'der' }, signature);
      } catch {
        return false;
      }
    },
  };
}

/** A certificate pinned for a vendor: its PEM, its key's id, and its validity. */
export interface PinnedCertificate {
  pem: string;
  /** SHA-256 of the key's SPKI DER. */
  keyId: string;
  subject: string;
  notBefore: string;
  notAfter: string;
}

/** Reads an X.509 certificate (PEM or DER) an operator pins; E_KEY when it is not one. */
export function readCertificate(bytes: Buffer, what: string): PinnedCertificate {
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(bytes);
  } catch (e) {
    throw new EcluseError('E_KEY', `${what} is not an X.509 certificate (PEM or DER): ${(e as Error).message}`);
  }
  return {
    pem: cert.toString(),
    keyId: keyIdOf(cert.publicKey),
    subject: cert.subject.replace(/\n/g, ', '),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
  };
}

/** E_VENDOR_UNTRUSTED when the certificate is not valid at `now` (as cursive checks before it verifies). */
export function checkValidity(c: Pick<PinnedCertificate, 'notBefore' | 'notAfter'>, what: string, now = new Date()) {
  if (now < new Date(c.notBefore) || now > new Date(c.notAfter)) {
    throw new EcluseError(
      'E_VENDOR_UNTRUSTED',
      `${what}: the vendor certificate is valid from ${c.notBefore} to ${c.notAfter}, not now`,
      { check: checkId('vendor-key') },
    );
  }
}

/**
 * The keys an import-station policy pins (PEM public keys or PEM certificates; OpenPGP keys are not for Glance
 * signatures) that can check a signature of `keyType`, now. Certificates outside their validity are left out.
 */
export function usableKeys(
  pems: string[],
  keyType: GlanceKeyType,
  now = new Date(),
): Array<{ key: crypto.KeyObject; keyId: string }> {
  const out: Array<{ key: crypto.KeyObject; keyId: string }> = [];
  for (const pem of pems) {
    let key: crypto.KeyObject;
    try {
      if (pem.includes('-----BEGIN CERTIFICATE-----')) {
        const cert = new crypto.X509Certificate(pem);
        if (now < new Date(cert.validFrom) || now > new Date(cert.validTo)) continue;
        key = cert.publicKey;
      } else key = crypto.createPublicKey(pem);
    } catch {
      continue;
    }
    if (keyFits(key, keyType)) out.push({ key, keyId: keyIdOf(key) });
  }
  return out;
}
