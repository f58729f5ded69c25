/**
 * The few certificate fields Node 20's `X509Certificate` does not expose — the subject's attributes (CN, OU) as
 * separate values, the key usage bits and the extended key usages — read with @peculiar/asn1-x509 (a schema-based
 * X.509 parser). Used on certificates whose signature has already been checked against the pinned root; any
 * malformation throws.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  BasicConstraints,
  Certificate,
  ExtendedKeyUsage,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  KeyUsage as KeyUsageExtension,
  KeyUsageFlags,
} from '@peculiar/asn1-x509';

export const OID = {
  commonName: '2.5.4.3',
  organizationalUnit: '2.5.4.11',
  organization: '2.5.4.10',
  basicConstraints: id_ce_basicConstraints,
  keyUsage: id_ce_keyUsage,
  extKeyUsage: id_ce_extKeyUsage,
  codeSigning: '1.3.6.1.5.5.7.3.3',
} as const;

/** Key usage bits (RFC 5280 §4.2.1.3) this module cares about. */
export interface KeyUsage {
  digitalSignature: boolean;
  keyCertSign: boolean;
  cRLSign: boolean;
}

/** What {@link readCertificateFields} extracts. Attributes that occur more than once keep every value. */
export interface CertificateFields {
  subject: Map<string, string[]>;
  keyUsage: KeyUsage | null;
  extKeyUsage: string[] | null;
  /** basicConstraints cA (false when the extension is absent), whatever the key usage says. */
  ca: boolean;
}

/** Reads the subject, key usage and extended key usage of a DER certificate. Throws on any malformation. */
export function readCertificateFields(der: Buffer): CertificateFields {
  const cert = AsnConvert.parse(der, Certificate);
  const subject = new Map<string, string[]>();
  for (const rdn of cert.tbsCertificate.subject) {
    for (const atv of rdn) {
      const text = atv.value.toString();
      subject.set(atv.type, [...(subject.get(atv.type) ?? []), text]);
    }
  }
  let keyUsage: KeyUsage | null = null;
  let extKeyUsage: string[] | null = null;
  let ca = false;
  for (const ext of cert.tbsCertificate.extensions ?? []) {
    if (ext.extnID === OID.keyUsage) {
      const flags = AsnConvert.parse(ext.extnValue, KeyUsageExtension).toNumber();
      keyUsage = {
        digitalSignature: (flags & KeyUsageFlags.digitalSignature) !== 0,
        keyCertSign: (flags & KeyUsageFlags.keyCertSign) !== 0,
        cRLSign: (flags & KeyUsageFlags.cRLSign) !== 0,
      };
    } else if (ext.extnID === OID.extKeyUsage) {
      extKeyUsage = [...AsnConvert.parse(ext.extnValue, ExtendedKeyUsage)];
    } else if (ext.extnID === OID.basicConstraints) {
      ca = AsnConvert.parse(ext.extnValue, BasicConstraints).cA;
    }
  }
  return { subject, keyUsage, extKeyUsage, ca };
}
