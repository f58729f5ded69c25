/**
 * A minimal, bounds-checked DER reader for the few certificate fields Node's `X509Certificate` does not expose on
 * Node 20: the subject's attributes (CN, OU), the key usage bits and the extended key usages. It reads certificates
 * only after their signature has been checked against the pinned root, but it is still written for hostile input:
 * every length is checked against its enclosing element and any malformation throws.
 */

/** One DER element: `tag`, and its content as `buf[start, end)`. */
interface Tlv {
  tag: number;
  start: number;
  end: number;
}

function readTlv(buf: Buffer, offset: number, limit: number): Tlv {
  if (offset + 2 > limit) throw new Error('truncated DER element');
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte DER tags are not supported');
  let len = buf[offset + 1] as number;
  let start = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > limit) throw new Error('bad DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[start + i] as number);
    start += n;
  }
  const end = start + len;
  if (end > limit) throw new Error('DER element overruns its container');
  return { tag, start, end };
}

function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.start; at < parent.end;) {
    const t = readTlv(buf, at, parent.end);
    out.push(t);
    at = t.end;
  }
  return out;
}

function expect(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new Error(`DER: expected ${what}`);
  return t;
}

function oidOf(buf: Buffer, t: Tlv): string {
  expect(t, 0x06, 'an OID');
  const parts: number[] = [];
  let value = 0;
  for (let i = t.start; i < t.end; i++) {
    const b = buf[i] as number;
    value = value * 128 + (b & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 256) throw new Error('DER: OID arc too large');
    if (!(b & 0x80)) {
      if (parts.length === 0) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80);
      else parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

const STRING_TAGS = new Map<number, BufferEncoding>([
  [0x0c, 'utf8'], // UTF8String
  [0x13, 'latin1'], // PrintableString
  [0x16, 'latin1'], // IA5String
]);

export const OID = {
  commonName: '2.5.4.3',
  organizationalUnit: '2.5.4.11',
  organization: '2.5.4.10',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
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
}

/** Reads the subject, key usage and extended key usage of a DER certificate. Throws on any malformation. */
export function readCertificateFields(der: Buffer): CertificateFields {
  const cert = readTlv(der, 0, der.length);
  if (cert.tag !== 0x30 || cert.end !== der.length) throw new Error('DER: not a certificate');
  const tbs = expect(children(der, cert)[0], 0x30, 'tbsCertificate');
  const fields = children(der, tbs);
  const skip = fields[0]?.tag === 0xa0 ? 1 : 0; // optional [0] version
  // serialNumber, signature, issuer, validity, subject
  const subjectTlv = expect(fields[skip + 4], 0x30, 'subject');
  const subject = new Map<string, string[]>();
  for (const rdn of children(der, subjectTlv)) {
    expect(rdn, 0x31, 'a relative distinguished name');
    for (const atv of children(der, rdn)) {
      const [type, value] = children(der, expect(atv, 0x30, 'an attribute'));
      if (!type || !value) throw new Error('DER: short attribute');
      const encoding = STRING_TAGS.get(value.tag);
      if (!encoding) continue;
      const oid = oidOf(der, type);
      subject.set(oid, [...(subject.get(oid) ?? []), der.subarray(value.start, value.end).toString(encoding)]);
    }
  }
  let keyUsage: KeyUsage | null = null;
  let extKeyUsage: string[] | null = null;
  const extsWrapper = fields.find((f) => f.tag === 0xa3);
  if (extsWrapper) {
    const exts = expect(children(der, extsWrapper)[0], 0x30, 'extensions');
    for (const ext of children(der, exts)) {
      const parts = children(der, expect(ext, 0x30, 'an extension'));
      const id = oidOf(der, parts[0] as Tlv);
      const octets = expect(parts[parts.length - 1], 0x04, 'extnValue');
      const inner = readTlv(der, octets.start, octets.end);
      if (id === OID.keyUsage) {
        expect(inner, 0x03, 'a BIT STRING');
        const first = inner.end - inner.start > 1 ? (der[inner.start + 1] as number) : 0;
        keyUsage = { digitalSignature: !!(first & 0x80), keyCertSign: !!(first & 0x04), cRLSign: !!(first & 0x02) };
      } else if (id === OID.extKeyUsage) {
        extKeyUsage = children(der, expect(inner, 0x30, 'a SEQUENCE of OIDs')).map((t) => oidOf(der, t));
      }
    }
  }
  return { subject, keyUsage, extKeyUsage };
}
