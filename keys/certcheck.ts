/**
 * Whether a signer certificate found on the media may vouch for a signature: it must be for the key the signature
 * names, be issued (and signed) by the pinned root, be a signer's certificate (not a CA; OU=signer; keyUsage
 * digitalSignature; extKeyUsage codeSigning; RSA of at least 3072 bits), and be valid at the check time. Checked with
 * Node's crypto (OpenSSL) only.
 */
import crypto from 'node:crypto';
import { LIMITS } from '../sneakernet/limits.js';
import { OID, readCertificateFields } from './der.js';
import { KEY_BITS, SIGNER_ROLE } from './issue.js';
import { keyIdOf } from './keyid.js';
import type { TrustAnchors } from './trust.js';

export type CertificateVerdict =
  | { trusted: true; publicKey: crypto.KeyObject; name: string; notAfter: string }
  /** `reason` completes "made by key X whose certificate …"; `expiry` marks validity-period failures. */
  | { trusted: false; reason: string; expiry: boolean };

function untrusted(reason: string, expiry = false): CertificateVerdict {
  return { trusted: false, reason, expiry };
}

/** Parses an OpenSSL date ("Jan  1 00:00:00 2030 GMT"); NaN fails closed in the comparisons below. */
function dateOf(text: string): number {
  return Date.parse(text);
}

/** Judges the certificate `pem` (undefined when the media holds none) for the signature key id `keyId` at `at`. */
export function assessSignerCertificate(
  pem: Buffer | undefined,
  keyId: string,
  anchors: TrustAnchors,
  at: Date,
): CertificateVerdict {
  if (!pem) return untrusted('is not on the media (no certificates/<key-id>.pem)');
  if (pem.length > LIMITS.certificateFileBytes) return untrusted('is larger than the format allows');
  let cert: crypto.X509Certificate;
  try {
    cert = new crypto.X509Certificate(pem);
  } catch {
    return untrusted('is not a readable X.509 certificate');
  }
  if (keyIdOf(cert.publicKey) !== keyId) return untrusted('is for a different key');
  if (!cert.checkIssued(anchors.root) || !cert.verify(anchors.root.publicKey)) {
    return untrusted("was not issued by this site's root");
  }
  let fields;
  try {
    fields = readCertificateFields(cert.raw);
  } catch {
    return untrusted('could not be decoded');
  }
  // Rule 5 reads basicConstraints itself: Node's `ca` (OpenSSL's X509_check_ca) is false for CA:TRUE when keyUsage
  // lacks keyCertSign, and such a certificate is still a CA's (an openssl-minted one showed it).
  if (cert.ca || fields.ca) return untrusted("is a CA certificate, not a signer's");
  const details = cert.publicKey.asymmetricKeyDetails;
  if (cert.publicKey.asymmetricKeyType !== 'rsa' || (details?.modulusLength ?? 0) < KEY_BITS) {
    return untrusted(`is not for an RSA key of at least ${KEY_BITS} bits`);
  }
  const ou = fields.subject.get(OID.organizationalUnit) ?? [];
  const cn = fields.subject.get(OID.commonName) ?? [];
  if (ou.length !== 1 || ou[0] !== SIGNER_ROLE) return untrusted(`does not have the ${SIGNER_ROLE} role`);
  if (cn.length !== 1 || !cn[0]) return untrusted('does not name its signer');
  const ku = fields.keyUsage;
  if (!ku || !ku.digitalSignature || ku.keyCertSign || ku.cRLSign) {
    return untrusted('does not allow digital signatures only (wrong key usage)');
  }
  if (!fields.extKeyUsage?.includes(OID.codeSigning)) return untrusted('does not allow code signing');
  const t = at.getTime();
  const rootFrom = dateOf(anchors.root.validFrom);
  const rootTo = dateOf(anchors.root.validTo);
  if (!(t >= rootFrom && t <= rootTo)) return untrusted(`chains to a root not valid on ${at.toISOString()}`, true);
  const from = dateOf(cert.validFrom);
  const to = dateOf(cert.validTo);
  if (!(t >= from)) return untrusted(`is not valid until ${iso(from, cert.validFrom)} (not yet valid)`, true);
  if (!(t <= to)) return untrusted(`expired on ${iso(to, cert.validTo)}`, true);
  return { trusted: true, publicKey: cert.publicKey, name: cn[0], notAfter: new Date(to).toISOString() };
}

function iso(ms: number, fallback: string): string {
  return Number.isNaN(ms) ? fallback : new Date(ms).toISOString();
}
