/**
 * The few certificate fields Node 20's `X509Certificate` does not expose — the subject's attributes (CN, OU, O) as
 * separate values, the key usage bits, the extended key usages and basicConstraints cA — read from the DER.
 *
 * The DER is cut into its elements by @sigstore/core's ASN.1 parser (`ASN1Obj`), which every import loads anyway
 * (through @sigstore/verify), rather than by a schema-based X.509 library (@peculiar/asn1-x509, 86 files) that cost
 * the import station several MiB of memory and tens of milliseconds more at every import. That parser is lenient
 * (it ignores trailing bytes, takes non-minimal lengths, decodes OIDs loosely, and finds fields by position), so this
 * module checks what it relies on itself: exactly one element in each buffer it parses, minimal (DER) lengths in
 * every element it walks, the exact identifier octet of each field of the certificate and tbsCertificate and of the
 * subject and the three extensions read here, OIDs decoded strictly, DER BOOLEANs, no unused key usage bit set, no
 * extension twice, no empty RDN, extension list or extKeyUsage.
 *
 * Attribute values are decoded from their string type as @peculiar/asn1-x509 (used here before) decoded them:
 * UTF8String as UTF-8, PrintableString, IA5String and TeletexString byte for byte (latin1), BMPString as UTF-16BE,
 * UniversalString as UTF-32BE. Unlike it, a value that is not valid in its type (bad UTF-8, a character outside
 * PrintableString's or IA5String's set, a lone surrogate) or of any other type is refused, not guessed at.
 *
 * Used on certificates Node's crypto has parsed (and, for signers, whose signature it has checked against the pinned
 * root); every byte is still treated as hostile: any malformation throws an EcluseError (E_KEY), which callers wrap.
 */
import { ASN1Obj } from '@sigstore/core';
import { EcluseError } from '../sneakernet/errors.js';

export const OID = {
  commonName: '2.5.4.3',
  organizationalUnit: '2.5.4.11',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
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
  /** basicConstraints cA (false when the extension is absent), whatever the key usage says. */
  ca: boolean;
}

/** DER identifier octets (class, constructed bit and tag number in one byte) of the elements read here. */
const TAG = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  teletexString: 0x14,
  ia5String: 0x16,
  universalString: 0x1c,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
  version: 0xa0, // [0] EXPLICIT
  issuerUniqueID: 0x81, // [1] IMPLICIT BIT STRING
  subjectUniqueID: 0x82, // [2] IMPLICIT BIT STRING
  extensions: 0xa3, // [3] EXPLICIT
} as const;

/** RFC 5280 §4.2.1.3: the bit numbers of the key usages read. */
const KEY_USAGE_BIT = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function malformed(what: string, cause?: unknown): never {
  throw new EcluseError('E_KEY', `the certificate is not well-formed DER: ${what}`, {}, { cause });
}

const hex = (tag: number): string => `0x${tag.toString(16).padStart(2, '0')}`;

/** Size of an element whose content is `length` bytes, with its length written in the fewest bytes (DER). */
function derSize(length: number): number {
  let lengthBytes = 1;
  if (length >= 0x80) for (let n = length; n > 0; n = Math.floor(n / 256)) lengthBytes++;
  return 1 + lengthBytes + length;
}

/** The one DER element that `bytes` holds, from its first byte to its last. */
function parseWhole(bytes: Buffer, what: string): ASN1Obj {
  let element: ASN1Obj;
  try {
    element = ASN1Obj.parseBuffer(bytes as Buffer<ArrayBuffer>);
  } catch (e) {
    return malformed(`${what}: ${(e as Error).message}`, e);
  }
  if (derSize(element.value.length) !== bytes.length) {
    malformed(`${what} is not exactly one element with a minimal length`);
  }
  return element;
}

/**
 * `element`, checked to have the identifier octet `tag`; when constructed, its elements are checked to have minimal
 * lengths (the parser has already checked that they fill it exactly).
 */
function expectTag(element: ASN1Obj | undefined, tag: number, what: string): ASN1Obj {
  if (element === undefined) return malformed(`${what} is missing`);
  const actual = element.tag.toDER();
  if (actual !== tag) malformed(`${what} has tag ${hex(actual)}, not ${hex(tag)}`);
  if (element.tag.constructed) {
    const sizes = element.subs.reduce((sum, sub) => sum + derSize(sub.value.length), 0);
    if (sizes !== element.value.length) malformed(`${what} holds an element whose length is not minimal`);
  }
  return element;
}

/** An OBJECT IDENTIFIER in dotted form: non-empty, each arc in the fewest bytes, the last arc complete. */
function oidOf(element: ASN1Obj | undefined, what: string): string {
  const bytes = expectTag(element, TAG.oid, what).value;
  if (bytes.length === 0) malformed(`${what} is an empty OID`);
  const arcs: bigint[] = [];
  let arc = 0n;
  let first = true; // at the first byte of an arc
  for (const byte of bytes) {
    if (first && byte === 0x80) malformed(`${what} is an OID with an arc not in the fewest bytes`);
    arc = (arc << 7n) | BigInt(byte & 0x7f);
    first = (byte & 0x80) === 0;
    if (first) {
      arcs.push(arc);
      arc = 0n;
    }
  }
  if (!first) malformed(`${what} is an OID whose last arc is cut short`);
  const [joint, ...rest] = arcs as [bigint, ...bigint[]];
  const head = joint < 40n ? [0n, joint] : joint < 80n ? [1n, joint - 40n] : [2n, joint - 80n];
  return [...head, ...rest].join('.');
}

/** A BOOLEAN, encoded as DER says (one byte, 0x00 or 0xff). */
function booleanOf(element: ASN1Obj, what: string): boolean {
  const bytes = expectTag(element, TAG.boolean, what).value;
  if (bytes.length !== 1 || (bytes[0] !== 0x00 && bytes[0] !== 0xff)) malformed(`${what} is not a DER BOOLEAN`);
  return bytes[0] === 0xff;
}

/** An attribute value decoded from its string type; any other type, or a value not valid in its type, throws. */
function stringOf(element: ASN1Obj | undefined, what: string): string {
  if (element === undefined) return malformed(`${what} is missing`);
  const bytes = element.value;
  const tag = element.tag.toDER();
  switch (tag) {
    case TAG.utf8String:
      try {
        return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch (e) {
        return malformed(`${what} is a UTF8String that is not UTF-8`, e);
      }
    case TAG.printableString:
      if (!PRINTABLE.test(bytes.toString('latin1'))) malformed(`${what} is a PrintableString with other characters`);
      return bytes.toString('latin1');
    case TAG.ia5String:
      if (bytes.some((b) => b > 0x7f)) malformed(`${what} is an IA5String with bytes above 0x7f`);
      return bytes.toString('latin1');
    case TAG.teletexString:
      return bytes.toString('latin1');
    case TAG.bmpString: {
      if (bytes.length % 2 !== 0) malformed(`${what} is a BMPString of an odd number of bytes`);
      const text = Buffer.from(bytes).swap16().toString('utf16le');
      if (LONE_SURROGATE.test(text)) malformed(`${what} is a BMPString with a lone surrogate`);
      return text;
    }
    case TAG.universalString: {
      if (bytes.length % 4 !== 0) malformed(`${what} is a UniversalString of a number of bytes not a multiple of 4`);
      const points: number[] = [];
      for (let i = 0; i < bytes.length; i += 4) {
        const point = bytes.readUInt32BE(i);
        if (point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) {
          malformed(`${what} is a UniversalString with a value that is not a character`);
        }
        points.push(point);
      }
      return String.fromCodePoint(...points);
    }
    default:
      return malformed(`${what} is of ASN.1 type ${hex(tag)}, not a string type decoded here`);
  }
}

function readSubject(name: ASN1Obj): Map<string, string[]> {
  const subject = new Map<string, string[]>();
  for (const rdn of name.subs) {
    expectTag(rdn, TAG.set, 'a subject RDN');
    if (rdn.subs.length === 0) malformed('a subject RDN is empty');
    for (const atv of rdn.subs) {
      expectTag(atv, TAG.sequence, 'a subject attribute');
      if (atv.subs.length !== 2) malformed('a subject attribute is not a type and a value');
      const type = oidOf(atv.subs[0], 'a subject attribute type');
      const text = stringOf(atv.subs[1], `subject attribute ${type}`);
      subject.set(type, [...(subject.get(type) ?? []), text]);
    }
  }
  return subject;
}

function readKeyUsage(extnValue: Buffer): KeyUsage {
  const bytes = expectTag(parseWhole(extnValue, 'keyUsage'), TAG.bitString, 'keyUsage').value;
  const unused = bytes[0];
  if (unused === undefined || unused > 7 || (bytes.length === 1 && unused !== 0)) {
    malformed('keyUsage is not a well-formed BIT STRING');
  }
  if (((bytes[bytes.length - 1] as number) & ((1 << unused) - 1)) !== 0) malformed('keyUsage has unused bits set');
  const bit = (n: number): boolean => (((bytes[1 + (n >> 3)] ?? 0) >> (7 - (n & 7))) & 1) === 1;
  return {
    digitalSignature: bit(KEY_USAGE_BIT.digitalSignature),
    keyCertSign: bit(KEY_USAGE_BIT.keyCertSign),
    cRLSign: bit(KEY_USAGE_BIT.cRLSign),
  };
}

function readExtKeyUsage(extnValue: Buffer): string[] {
  const seq = expectTag(parseWhole(extnValue, 'extKeyUsage'), TAG.sequence, 'extKeyUsage');
  if (seq.subs.length === 0) malformed('extKeyUsage is empty');
  return seq.subs.map((purpose) => oidOf(purpose, 'an extKeyUsage purpose'));
}

function readBasicConstraints(extnValue: Buffer): boolean {
  const seq = expectTag(parseWhole(extnValue, 'basicConstraints'), TAG.sequence, 'basicConstraints');
  let i = 0;
  let ca = false;
  if (seq.subs[i]?.tag.toDER() === TAG.boolean) ca = booleanOf(seq.subs[i++] as ASN1Obj, 'basicConstraints cA');
  if (seq.subs[i]?.tag.toDER() === TAG.integer) {
    if (expectTag(seq.subs[i++], TAG.integer, 'pathLenConstraint').value.length === 0) {
      malformed('basicConstraints pathLenConstraint is empty');
    }
  }
  if (i !== seq.subs.length) malformed('basicConstraints holds more than cA and pathLenConstraint');
  return ca;
}

/** The extensions of a tbsCertificate's fields from `i` on, which must be the last (none when absent). */
function readExtensions(fields: ASN1Obj[], i: number): ASN1Obj[] {
  if (i < fields.length && fields[i]?.tag.toDER() === TAG.extensions) {
    const wrapper = expectTag(fields[i++], TAG.extensions, 'extensions');
    if (wrapper.subs.length !== 1) malformed('[3] does not hold one extension list');
    const list = expectTag(wrapper.subs[0], TAG.sequence, 'the extension list');
    if (list.subs.length === 0) malformed('the extension list is empty');
    if (i !== fields.length) malformed('tbsCertificate has fields after its extensions');
    return list.subs;
  }
  if (i !== fields.length) malformed('tbsCertificate has unexpected fields');
  return [];
}

function read(der: Buffer): CertificateFields {
  const cert = expectTag(parseWhole(der, 'the certificate'), TAG.sequence, 'the certificate');
  if (cert.subs.length !== 3) malformed('the certificate is not tbsCertificate, signatureAlgorithm, signature');
  const tbs = expectTag(cert.subs[0], TAG.sequence, 'tbsCertificate');
  expectTag(cert.subs[1], TAG.sequence, 'signatureAlgorithm');
  expectTag(cert.subs[2], TAG.bitString, 'signatureValue');

  const fields = tbs.subs;
  let i = 0;
  if (fields[0]?.tag.toDER() === TAG.version) {
    const version = expectTag(fields[i++], TAG.version, 'version');
    if (version.subs.length !== 1) malformed('[0] does not hold one version');
    expectTag(version.subs[0], TAG.integer, 'version');
  }
  expectTag(fields[i++], TAG.integer, 'serialNumber');
  expectTag(fields[i++], TAG.sequence, 'signature');
  expectTag(fields[i++], TAG.sequence, 'issuer');
  expectTag(fields[i++], TAG.sequence, 'validity');
  const subjectName = expectTag(fields[i++], TAG.sequence, 'subject');
  expectTag(fields[i++], TAG.sequence, 'subjectPublicKeyInfo');
  if (fields[i]?.tag.toDER() === TAG.issuerUniqueID) i++;
  if (fields[i]?.tag.toDER() === TAG.subjectUniqueID) i++;
  const extensions = readExtensions(fields, i);

  const subject = readSubject(subjectName);
  let keyUsage: KeyUsage | null = null;
  let extKeyUsage: string[] | null = null;
  let ca = false;
  const seen = new Set<string>();
  for (const ext of extensions) {
    expectTag(ext, TAG.sequence, 'an extension');
    const id = oidOf(ext.subs[0], 'an extension id');
    if (seen.has(id)) malformed(`extension ${id} occurs twice`);
    seen.add(id);
    if (ext.subs.length === 3) booleanOf(ext.subs[1] as ASN1Obj, `extension ${id} critical`);
    else if (ext.subs.length !== 2) malformed(`extension ${id} is not an id, a critical flag and a value`);
    const extnValue = expectTag(ext.subs[ext.subs.length - 1], TAG.octetString, `extension ${id} value`).value;
    if (id === OID.keyUsage) keyUsage = readKeyUsage(extnValue);
    else if (id === OID.extKeyUsage) extKeyUsage = readExtKeyUsage(extnValue);
    else if (id === OID.basicConstraints) ca = readBasicConstraints(extnValue);
  }
  return { subject, keyUsage, extKeyUsage, ca };
}

/** Reads the subject, key usage, extended key usage and cA of a DER certificate. Throws on any malformation. */
export function readCertificateFields(der: Buffer): CertificateFields {
  try {
    return read(der);
  } catch (e) {
    if (e instanceof EcluseError) throw e;
    return malformed((e as Error).message, e); // the parser's own errors, a stack overflow on deep nesting
  }
}
