/**
 * keys/der.ts reads the subject attributes, keyUsage, extendedKeyUsage and basicConstraints cA of certificates that
 * `openssl req -x509` minted here, and refuses (E_KEY) each way a certificate's DER can be wrong that it relies on:
 * the malformed ones are the good ones with bytes edited deliberately (same lengths, so only the edit is wrong).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OID, readCertificateFields } from '../../keys/der.js';
import { refusal, tmpDir } from './fixtures.js';

let dir: string;
let keyFile: string;
let serial = 0;

beforeAll(() => {
  dir = tmpDir('der');
  keyFile = path.join(dir, 'k.key');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile], {
    stdio: 'pipe',
  });
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The DER of a self-signed certificate for `subject` (openssl -subj syntax, UTF-8) with the extension lines. */
function mint(subject: string, extensions: string[], stringMask = 'utf8only'): Buffer {
  const name = `c${++serial}`;
  const cnf = path.join(dir, `${name}.cnf`);
  const out = path.join(dir, `${name}.der`);
  fs.writeFileSync(
    cnf,
    ['[req]', 'distinguished_name = dn', `string_mask = ${stringMask}`, '[dn]', '[v3]', ...extensions, ''].join('\n'),
  );
  const ext = extensions.length > 0 ? ['-extensions', 'v3'] : [];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-new',
      '-key',
      keyFile,
      '-config',
      cnf,
      ...ext,
      '-utf8',
      '-multivalue-rdn',
      '-subj',
      subject,
      '-days',
      '1',
      '-outform',
      'DER',
      '-out',
      out,
    ],
    { stdio: 'pipe' },
  );
  return fs.readFileSync(out);
}

/** `der` with the byte at `offset` from the last occurrence of `find` set to `byte` (asserting what it was). */
function edit(der: Buffer, find: number[], offset: number, was: number, byte: number): Buffer {
  const at = der.lastIndexOf(Buffer.from(find));
  expect(at, 'the bytes to edit are in the certificate').toBeGreaterThanOrEqual(0);
  const out = Buffer.from(der);
  expect(out[at + offset]).toBe(was);
  out[at + offset] = byte;
  return out;
}

/** `der` with the last occurrence of `find` replaced by `bytes`, as many (so that only the edit is wrong). */
function rewrite(der: Buffer, find: number[], bytes: number[]): Buffer {
  expect(bytes.length).toBe(find.length);
  const at = der.lastIndexOf(Buffer.from(find));
  expect(at, 'the bytes to rewrite are in the certificate').toBeGreaterThanOrEqual(0);
  const out = Buffer.from(der);
  out.set(bytes, at);
  return out;
}

const SIGNER = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = codeSigning',
  'subjectKeyIdentifier = hash',
];
const CN_EVE = [0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, 0x65, 0x76, 0x65]; // CN, UTF8String "eve"
const CN_E_ACUTE = [0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x02, 0xc3, 0xa9]; // CN, UTF8String "é"
const EKU_CODE_SIGNING = [0x55, 0x1d, 0x25, 0x04, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07];
const KU_DIGITAL_SIGNATURE = [0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff, 0x04, 0x04, 0x03, 0x02, 0x07, 0x80];

const malformed = async (der: Buffer, message: RegExp): Promise<void> => {
  const err = await refusal(() => readCertificateFields(der), 'E_KEY');
  expect(err.message).toMatch(/not well-formed DER/);
  expect(err.message).toMatch(message);
};

describe('readCertificateFields on certificates openssl minted', () => {
  it('reads the subject attributes, every value of a repeated one and those of a multi-valued RDN', () => {
    const fields = readCertificateFields(mint('/CN=eve/OU=signer/OU=second+O=ecluse/O=other', SIGNER));
    expect([...fields.subject]).toEqual([
      [OID.commonName, ['eve']],
      [OID.organizationalUnit, ['signer', 'second']],
      [OID.organization, ['ecluse', 'other']],
    ]);
  });

  it('decodes UTF8String, PrintableString, IA5String, BMPString and TeletexString (latin1) values', () => {
    const utf8 = readCertificateFields(mint('/CN=écluse 😀/C=FR/emailAddress=a@b.example', SIGNER));
    expect(utf8.subject.get(OID.commonName)).toEqual(['écluse 😀']);
    expect(utf8.subject.get('2.5.4.6')).toEqual(['FR']); // PrintableString
    expect(utf8.subject.get('1.2.840.113549.1.9.1')).toEqual(['a@b.example']); // IA5String
    const bmp = mint('/CN=é€', SIGNER, 'pkix');
    expect(bmp.includes(Buffer.from([0x1e, 0x04, 0x00, 0xe9, 0x20, 0xac]))).toBe(true); // openssl chose BMPString
    expect(readCertificateFields(bmp).subject.get(OID.commonName)).toEqual(['é€']);
    const teletex = mint('/CN=éA', SIGNER, 'nombstr');
    expect(teletex.includes(Buffer.from([0x14, 0x02, 0xe9, 0x41]))).toBe(true); // openssl chose TeletexString
    expect(readCertificateFields(teletex).subject.get(OID.commonName)).toEqual(['éA']);
    // a UTF8String's bytes read as a TeletexString: latin1, byte for byte (as @peculiar/asn1-x509 read them)
    const retagged = edit(mint('/CN=é', SIGNER), CN_E_ACUTE, 5, 0x0c, 0x14);
    expect(readCertificateFields(retagged).subject.get(OID.commonName)).toEqual(['Ã©']);
  });

  it("reads a signer's keyUsage, extendedKeyUsage and basicConstraints", () => {
    const fields = readCertificateFields(mint('/CN=eve', SIGNER));
    expect(fields.keyUsage).toEqual({ digitalSignature: true, keyCertSign: false, cRLSign: false });
    expect(fields.extKeyUsage).toEqual([OID.codeSigning]);
    expect(fields.ca).toBe(false);
  });

  it("reads a CA's: keyCertSign, cRLSign, cA, and every extended key usage in order", () => {
    const fields = readCertificateFields(
      mint('/CN=root', [
        'basicConstraints = critical, CA:TRUE, pathlen:1',
        'keyUsage = critical, keyCertSign, cRLSign',
        'extendedKeyUsage = serverAuth, codeSigning, 1.2.3.4.5.67890, 2.999.1',
      ]),
    );
    expect(fields.keyUsage).toEqual({ digitalSignature: false, keyCertSign: true, cRLSign: true });
    expect(fields.extKeyUsage).toEqual(['1.3.6.1.5.5.7.3.1', OID.codeSigning, '1.2.3.4.5.67890', '2.999.1']);
    expect(fields.ca).toBe(true);
  });

  it('gives null keyUsage and extKeyUsage and cA false when the extensions are absent', () => {
    const fields = readCertificateFields(mint('/CN=bare', []));
    expect(fields).toMatchObject({ keyUsage: null, extKeyUsage: null, ca: false });
  });
});

describe('readCertificateFields refuses a malformed certificate', () => {
  let good: Buffer;
  beforeAll(() => {
    good = mint('/CN=eve/CN=é/emailAddress=a@b.example', SIGNER);
    expect(readCertificateFields(good).subject.get(OID.commonName)).toEqual(['eve', 'é']);
  });

  it('truncated DER, or bytes after it', async () => {
    await malformed(good.subarray(0, good.length - 1), /the certificate/);
    await malformed(good.subarray(0, 100), /the certificate/);
    await malformed(Buffer.concat([good, Buffer.from([0x00])]), /not exactly one element/);
    await malformed(Buffer.alloc(0), /the certificate/);
  });

  it('a subject RDN that is a SEQUENCE, not a SET', async () => {
    const at = good.lastIndexOf(Buffer.from(CN_EVE));
    expect(good[at - 4]).toBe(0x31); // SET { SEQUENCE { CN, "eve" } }
    await malformed(edit(good, CN_EVE, -4, 0x31, 0x30), /a subject RDN has tag 0x30, not 0x31/);
  });

  it('an attribute value of a type that is not a string (INTEGER, OCTET STRING)', async () => {
    await malformed(edit(good, CN_EVE, 5, 0x0c, 0x02), /subject attribute 2\.5\.4\.3 is of ASN\.1 type 0x02/);
    await malformed(edit(good, CN_EVE, 5, 0x0c, 0x04), /type 0x04, not a string type/);
  });

  it('an attribute value not valid in its string type', async () => {
    await malformed(edit(good, CN_E_ACUTE, 7, 0xc3, 0xff), /UTF8String with asn1js warning "Error during "decodeURI/);
    await malformed(edit(good, CN_E_ACUTE, 5, 0x0c, 0x16), /an IA5String with bytes above 0x7f/);
    await malformed(edit(good, CN_E_ACUTE, 5, 0x0c, 0x13), /a PrintableString with other characters/);
    const email = [0x16, 0x0b, 0x61, 0x40]; // IA5String "a@..."
    await malformed(edit(good, email, 0, 0x16, 0x13), /a PrintableString with other characters/);
    const bmp = mint('/CN=éA', SIGNER, 'pkix'); // BMPString 00 e9 00 41
    await malformed(edit(bmp, [0x1e, 0x04, 0x00, 0xe9], 2, 0x00, 0xd8), /a BMPString with a lone surrogate/);
    await malformed(edit(bmp, [0x1e, 0x04, 0x00, 0xe9], 0, 0x1e, 0x1c), /a UniversalString with a value that is not/);
  });

  it('an extendedKeyUsage that is not a SEQUENCE of OIDs', async () => {
    await malformed(edit(good, EKU_CODE_SIGNING, 5, 0x30, 0x31), /extKeyUsage has tag 0x31, not 0x30/);
    await malformed(edit(good, EKU_CODE_SIGNING, 7, 0x06, 0x04), /an extKeyUsage purpose has tag 0x04, not 0x06/);
    const cut = [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x03];
    await malformed(edit(good, cut, 7, 0x03, 0x83), /extKeyUsage: End of input reached before message was fully/);
    // 1.3.6.1.5.5.7.3 with its last arc in two octets, 80 03
    await malformed(
      edit(good, cut, 6, 0x03, 0x80),
      /OBJECT IDENTIFIER with asn1js warning "Needlessly long format of SID/,
    );
  });

  it('BER that is not DER in the subject: a long form length, an indefinite length, a long tag, a constructed string', async () => {
    // "eve" made "ev" with its length in the long form, 81 02 (asn1js warns)
    await malformed(
      rewrite(good, CN_EVE, [...CN_EVE.slice(0, 6), 0x81, 0x02, 0x65, 0x76]),
      /UTF8String with asn1js warning "Unnecessary usage of long length form"/,
    );
    // SEQUENCE { CN, "eve" } made SEQUENCE (indefinite) { CN, "e" } end-of-contents
    const atv = [0x30, 0x0a, ...CN_EVE];
    await malformed(
      rewrite(good, atv, [0x30, 0x80, ...CN_EVE.slice(0, 6), 0x01, 0x65, 0x00, 0x00]),
      /SEQUENCE of indefinite length/,
    );
    // "eve" made "ev" with the UTF8String tag in two octets, 1f 0c
    await malformed(
      rewrite(good, CN_EVE, [...CN_EVE.slice(0, 5), 0x1f, 0x0c, 0x02, 0x65, 0x76]),
      /UTF8String with a tag of more than one octet/,
    );
    // "eve" made a constructed UTF8String holding the UTF8String "e"
    await malformed(
      rewrite(good, CN_EVE, [...CN_EVE.slice(0, 5), 0x2c, 0x03, 0x0c, 0x01, 0x65]),
      /UTF8String in the constructed form/,
    );
  });

  it('a length of 256 (which asn1js 3.1.0 flags), and one with a leading zero octet (which it does not)', async () => {
    const long = mint(`/CN=eve/description=${'a'.repeat(256)}`, SIGNER);
    const header = [0x06, 0x03, 0x55, 0x04, 0x0d, 0x0c, 0x82, 0x01, 0x00, 0x61]; // description, UTF8String of 256
    expect(long.includes(Buffer.from(header))).toBe(true);
    expect(readCertificateFields(long).subject.get('2.5.4.13')).toEqual(['a'.repeat(256)]);
    // 255 a's with the length 83 00 00 ff
    await malformed(
      rewrite(long, header, [...header.slice(0, 6), 0x83, 0x00, 0x00, 0xff]),
      /UTF8String whose length is not minimal/,
    );
  });

  it('a keyUsage with unused bits set, a critical flag that is not a DER BOOLEAN, an extension twice', async () => {
    await malformed(edit(good, KU_DIGITAL_SIGNATURE, 11, 0x80, 0x81), /keyUsage has unused bits set/);
    await malformed(edit(good, KU_DIGITAL_SIGNATURE, 5, 0xff, 0x01), /2\.5\.29\.15 critical is not a DER BOOLEAN/);
    const ski = [0x06, 0x03, 0x55, 0x1d, 0x0e]; // subjectKeyIdentifier, made a second basicConstraints
    await malformed(edit(good, ski, 4, 0x0e, 0x13), /extension 2\.5\.29\.19 occurs twice/);
  });
});
