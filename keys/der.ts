/**
 * The few certificate fields Node 20's `X509Certificate` does not expose — the subject's attributes (CN, OU, O) as
 * separate values, the key usage bits, the extended key usages and basicConstraints cA — read from the DER.
 *
 * asn1js (a dependency already, for key files) decodes the ASN.1: it cuts the bytes into elements, refuses truncated
 * or malformed ones, decodes OIDs, BIT STRINGs and strings, and notes what BER allows and DER does not as warnings on
 * the part it saw it in (element, tag, length, value, OID arc): a long-form length under 128, a BOOLEAN, an INTEGER
 * (under 4 octets) or an OID arc in needless octets, UTF-8 it cannot decode. Each element of the certificate and of
 * each extension value read is walked, and refused on any asn1js error or warning (but those valid DER gets: an INTEGER
 * of 4 octets or more or an OID arc above 2^56 kept as bytes, an empty SEQUENCE, SET or string), an indefinite length
 * or end-of-contents, a tag of more than one octet (X.509 has none; asn1js reads 1f 03 as a BIT STRING), a universal
 * type in the form DER does not use (asn1js reads a constructed UTF8String's inner TLV as its text), and bytes after
 * the element. asn1js 3.1.0 looks for a needless zero in the last length octet, not the first (it warns on a length of
 * 256, takes 82 00 80), so each length is compared with asn1js's re-encoding of it; its UniversalString decoder drops
 * the high 16 bits of each character, so UniversalString is decoded here.
 *
 * Checked here as a schema would, or where asn1js is lenient: the identifier octet of each field read; DER BOOLEANs
 * (asn1js takes any octet); keyUsage's unused bits; no extension twice; no empty RDN, extension list, extKeyUsage or
 * OID; OID arcs decoded exactly (below 2^53); attribute values valid in their type (asn1js checks only UTF-8), decoded
 * as before: UTF-8, latin1 (PrintableString, IA5String, TeletexString), UTF-16BE (BMP), UTF-32BE; no other type.
 *
 * Used on certificates Node's crypto has parsed (and, for signers, whose signature it has checked against the pinned
 * root); every byte is still treated as hostile: any malformation throws an EcluseError (E_KEY), which callers wrap.
 */
import * as asn1js from 'asn1js';
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

type Block = asn1js.BaseBlock;

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

/** asn1js warnings that valid DER gets: values kept as bytes, not decoded; the third, see the length check. */
const NOT_FAULTS = new Set([
  'Too big Integer for decoding, hex only',
  'Too big SID for decoding, hex only',
  'Needlessly long encoded length',
]);
/** Universal tag numbers encoded constructed: SEQUENCE, SET, EXTERNAL, EMBEDDED PDV, CHARACTER STRING (X.680). */
const CONSTRUCTED = new Set([16, 17, 8, 11, 29]);

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function malformed(what: string, cause?: unknown): never {
  throw new EcluseError('E_KEY', `the certificate is not well-formed DER: ${what}`, {}, { cause });
}

const hex = (tag: number): string => `0x${tag.toString(16).padStart(2, '0')}`;

/** The identifier octet of a parsed element (one octet: {@link checkDer} refuses longer tags). */
const tagOf = (block: Block | undefined): number | undefined => block?.valueBeforeDecodeView[0];

/** The elements a constructed element holds (none for a primitive one). */
const subsOf = (block: Block): Block[] => (block instanceof asn1js.Constructed ? block.valueBlock.value : []);

/** Refuses `block` or any element inside it on what asn1js found, or lets through, that DER does not allow. */
function checkDer(block: Block, what: string): void {
  const { idBlock, lenBlock, valueBlock } = block;
  const at = `${what} holds ${(block.constructor as typeof asn1js.BaseBlock).NAME}`;
  const inner = (valueBlock as { value?: unknown }).value;
  const emptyAllowed = idBlock.isConstructed || block instanceof asn1js.BaseStringBlock; // not an empty INTEGER
  const items = Array.isArray(inner) ? (inner as { error: string; warnings: string[] }[]) : [];
  const arcs = items.filter((item) => !(item instanceof asn1js.BaseBlock)); // an OID's arcs: not copied up
  for (const part of [block, idBlock, lenBlock, valueBlock, ...arcs]) {
    if (part.error !== '') malformed(`${at} with asn1js error "${part.error}"`);
    for (const warning of part.warnings) {
      if (NOT_FAULTS.has(warning) || (warning === 'Zero buffer length' && emptyAllowed)) continue;
      malformed(`${at} with asn1js warning "${warning}"`);
    }
  }
  if (idBlock.blockLength !== 1) malformed(`${at} with a tag of more than one octet`);
  if (lenBlock.isIndefiniteForm) malformed(`${at} of indefinite length`);
  if (lenBlock.toBER(true).byteLength !== lenBlock.blockLength) malformed(`${at} whose length is not minimal`);
  const universal = idBlock.tagClass === 1;
  if (universal && idBlock.tagNumber === 0) malformed(`${at}: an end-of-contents`);
  if (universal && idBlock.isConstructed !== CONSTRUCTED.has(idBlock.tagNumber)) {
    malformed(`${at} in the ${idBlock.isConstructed ? 'constructed' : 'primitive'} form`);
  }
  for (const item of items) if (item instanceof asn1js.BaseBlock) checkDer(item as Block, what);
}

/** The one DER element that `bytes` holds, from its first byte to its last. */
function parseWhole(bytes: Uint8Array, what: string): Block {
  let parsed: asn1js.FromBerResult;
  try {
    parsed = asn1js.fromBER(bytes, { parseEmbedded: false }); // extension values are parsed when read, on their own
  } catch (e) {
    return malformed(`${what}: ${(e as Error).message}`, e); // asn1js throws on a BMPString of an odd length, ...
  }
  if (parsed.offset === -1) malformed(`${what}: ${parsed.result.error}`);
  if (parsed.offset !== bytes.length) malformed(`${what} is not exactly one element: bytes follow it`);
  checkDer(parsed.result, what);
  return parsed.result;
}

/** `block`, checked to have the identifier octet `tag`. */
function expectTag(block: Block | undefined, tag: number, what: string): Block {
  if (block === undefined) return malformed(`${what} is missing`);
  const actual = tagOf(block) as number;
  if (actual !== tag) malformed(`${what} has tag ${hex(actual)}, not ${hex(tag)}`);
  return block;
}

/** An OBJECT IDENTIFIER in dotted form: not empty, each arc decoded exactly. */
function oidOf(block: Block | undefined, what: string): string {
  const oid = expectTag(block, TAG.oid, what) as asn1js.ObjectIdentifier;
  const arcs = oid.valueBlock.value;
  if (arcs.length === 0) malformed(`${what} is an empty OID`);
  if (arcs.some((arc) => arc.isHexOnly || !Number.isSafeInteger(arc.valueDec))) {
    malformed(`${what} is an OID with an arc too large for asn1js to decode exactly`);
  }
  return oid.getValue();
}

/** A BOOLEAN, encoded as DER says (one byte, 0x00 or 0xff). */
function booleanOf(block: Block | undefined, what: string): boolean {
  const bytes = (expectTag(block, TAG.boolean, what) as asn1js.Boolean).valueBlock.valueHexView;
  if (bytes.length !== 1 || (bytes[0] !== 0x00 && bytes[0] !== 0xff)) malformed(`${what} is not a DER BOOLEAN`);
  return bytes[0] === 0xff;
}

/** An attribute value decoded from its string type; any other type, or a value not valid in its type, throws. */
function stringOf(block: Block | undefined, what: string): string {
  if (block === undefined) return malformed(`${what} is missing`);
  const tag = tagOf(block) as number;
  const text = (): string => (block as asn1js.BaseStringBlock).valueBlock.value;
  switch (tag) {
    case TAG.utf8String: // asn1js warns on bytes that are not UTF-8, refused by checkDer
    case TAG.teletexString:
      return text();
    case TAG.printableString:
      if (!PRINTABLE.test(text())) malformed(`${what} is a PrintableString with other characters`);
      return text();
    case TAG.ia5String:
      if ([...text()].some((c) => c > '\x7f')) malformed(`${what} is an IA5String with bytes above 0x7f`);
      return text();
    case TAG.bmpString:
      if (LONE_SURROGATE.test(text())) malformed(`${what} is a BMPString with a lone surrogate`);
      return text();
    case TAG.universalString: {
      const bytes = Buffer.from((block as asn1js.UniversalString).valueBlock.valueHexView); // a multiple of 4 long
      const points = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readUInt32BE(4 * i));
      const bad = points.some((point) => point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff));
      if (bad) malformed(`${what} is a UniversalString with a value that is not a character`);
      return String.fromCodePoint(...points);
    }
    default:
      return malformed(`${what} is of ASN.1 type ${hex(tag)}, not a string type decoded here`);
  }
}

function readSubject(name: Block): Map<string, string[]> {
  const subject = new Map<string, string[]>();
  for (const rdn of subsOf(name)) {
    expectTag(rdn, TAG.set, 'a subject RDN');
    if (subsOf(rdn).length === 0) malformed('a subject RDN is empty');
    for (const atv of subsOf(rdn)) {
      const [type, value, ...rest] = subsOf(expectTag(atv, TAG.sequence, 'a subject attribute'));
      if (rest.length > 0 || value === undefined) malformed('a subject attribute is not a type and a value');
      const oid = oidOf(type, 'a subject attribute type');
      subject.set(oid, [...(subject.get(oid) ?? []), stringOf(value, `subject attribute ${oid}`)]);
    }
  }
  return subject;
}

function readKeyUsage(extnValue: Uint8Array): KeyUsage {
  const bitString = expectTag(parseWhole(extnValue, 'keyUsage'), TAG.bitString, 'keyUsage') as asn1js.BitString;
  const { unusedBits, valueHexView: bytes } = bitString.valueBlock; // the bits, after the unused-bits octet
  if (bitString.lenBlock.length === 0 || (bytes.length === 0 && unusedBits !== 0)) {
    malformed('keyUsage is not a well-formed BIT STRING');
  }
  if (((bytes[bytes.length - 1] ?? 0) & ((1 << unusedBits) - 1)) !== 0) malformed('keyUsage has unused bits set');
  const bit = (n: number): boolean => (((bytes[n >> 3] ?? 0) >> (7 - (n & 7))) & 1) === 1;
  return { digitalSignature: bit(0), keyCertSign: bit(5), cRLSign: bit(6) }; // RFC 5280 §4.2.1.3's bit numbers
}

function readExtKeyUsage(extnValue: Uint8Array): string[] {
  const purposes = subsOf(expectTag(parseWhole(extnValue, 'extKeyUsage'), TAG.sequence, 'extKeyUsage'));
  if (purposes.length === 0) malformed('extKeyUsage is empty');
  return purposes.map((purpose) => oidOf(purpose, 'an extKeyUsage purpose'));
}

function readBasicConstraints(extnValue: Uint8Array): boolean {
  const fields = subsOf(expectTag(parseWhole(extnValue, 'basicConstraints'), TAG.sequence, 'basicConstraints'));
  let i = 0;
  let ca = false;
  if (tagOf(fields[i]) === TAG.boolean) ca = booleanOf(fields[i++], 'basicConstraints cA');
  if (tagOf(fields[i]) === TAG.integer) i++; // pathLenConstraint: asn1js refuses an empty INTEGER (checkDer)
  if (i !== fields.length) malformed('basicConstraints holds more than cA and pathLenConstraint');
  return ca;
}

/** The extensions of a tbsCertificate's fields from `i` on, which must be the last (none when absent). */
function readExtensions(fields: Block[], i: number): Block[] {
  if (tagOf(fields[i]) === TAG.extensions) {
    const wrapper = subsOf(expectTag(fields[i++], TAG.extensions, 'extensions'));
    if (wrapper.length !== 1) malformed('[3] does not hold one extension list');
    const list = subsOf(expectTag(wrapper[0], TAG.sequence, 'the extension list'));
    if (list.length === 0) malformed('the extension list is empty');
    if (i !== fields.length) malformed('tbsCertificate has fields after its extensions');
    return list;
  }
  if (i !== fields.length) malformed('tbsCertificate has unexpected fields');
  return [];
}

function read(der: Buffer): CertificateFields {
  const cert = subsOf(expectTag(parseWhole(der, 'the certificate'), TAG.sequence, 'the certificate'));
  if (cert.length !== 3) malformed('the certificate is not tbsCertificate, signatureAlgorithm, signature');
  const fields = subsOf(expectTag(cert[0], TAG.sequence, 'tbsCertificate'));
  expectTag(cert[1], TAG.sequence, 'signatureAlgorithm');
  expectTag(cert[2], TAG.bitString, 'signatureValue');

  let i = 0;
  if (tagOf(fields[0]) === TAG.version) {
    const version = subsOf(expectTag(fields[i++], TAG.version, 'version'));
    if (version.length !== 1) malformed('[0] does not hold one version');
    expectTag(version[0], TAG.integer, 'version');
  }
  expectTag(fields[i++], TAG.integer, 'serialNumber');
  expectTag(fields[i++], TAG.sequence, 'signature');
  expectTag(fields[i++], TAG.sequence, 'issuer');
  expectTag(fields[i++], TAG.sequence, 'validity');
  const subjectName = expectTag(fields[i++], TAG.sequence, 'subject');
  expectTag(fields[i++], TAG.sequence, 'subjectPublicKeyInfo');
  if (tagOf(fields[i]) === TAG.issuerUniqueID) i++;
  if (tagOf(fields[i]) === TAG.subjectUniqueID) i++;
  const extensions = readExtensions(fields, i);

  const subject = readSubject(subjectName);
  let keyUsage: KeyUsage | null = null;
  let extKeyUsage: string[] | null = null;
  let ca = false;
  const seen = new Set<string>();
  for (const ext of extensions) {
    const parts = subsOf(expectTag(ext, TAG.sequence, 'an extension'));
    const id = oidOf(parts[0], 'an extension id');
    if (seen.has(id)) malformed(`extension ${id} occurs twice`);
    seen.add(id);
    if (parts.length === 3) booleanOf(parts[1], `extension ${id} critical`);
    else if (parts.length !== 2) malformed(`extension ${id} is not an id, a critical flag and a value`);
    const value = expectTag(parts[parts.length - 1], TAG.octetString, `extension ${id} value`) as asn1js.OctetString;
    const extnValue = value.valueBlock.valueHexView;
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
    return malformed((e as Error).message, e); // anything asn1js throws past parseWhole
  }
}
