/**
 * The signer-certificate rules of docs/FORMAT.md 3.3 (keys/certcheck.ts), each made to fire by a certificate the
 * `openssl` CLI minted (test/helpers/openssl-ca.ts), never by our own ceremony: the site root comes from
 * `initKeys`, and openssl signs with its key whatever our issuer would refuse to write. A control certificate, minted
 * the same way with everything right, is trusted: each bad one differs from it in one thing only.
 *
 * Each case goes through verifyStatementSignatures (what the import runs): a signature by the certificate's key
 * over a statement, refused with E_UNTRUSTED_SIGNER naming the rule.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initKeys } from '../../keys/ceremony.js';
import { assessSignerCertificate } from '../../keys/certcheck.js';
import { keyIdOf, shortKeyId } from '../../keys/keyid.js';
import { signDsse } from '../../keys/signer.js';
import { loadTrustAnchors, type TrustAnchors } from '../../keys/trust.js';
import { verifyStatementSignatures } from '../../keys/verify.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { PAYLOAD_TYPE } from '../../sneakernet/statement.js';
import {
  CA_EXTENSIONS,
  opensslIssue,
  opensslRsaKey,
  opensslText,
  SIGNER_EXTENSIONS,
  type Extensions,
  type OpensslCa,
} from '../helpers/openssl-ca.js';
import { refusal, tmpDir } from './fixtures.js';

const STATEMENT = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', n: 1 }));
const DAY = 86_400_000;
const SIGNER = '/CN=eve/OU=signer/O=ecluse';
const without = (prefix: string): Extensions => SIGNER_EXTENSIONS.filter((l) => !l.startsWith(prefix));

interface Key {
  file: string;
  key: crypto.KeyObject;
  keyId: string;
  signature: Buffer;
}

describe('signer certificates minted by openssl (FORMAT.md 3.3)', () => {
  let dir: string;
  let anchors: TrustAnchors;
  let root: OpensslCa;
  let eve: Key; // RSA-3072, the size the rules ask for
  let short: Key; // RSA-2048
  let intermediate: Key;

  async function key(name: string, bits: number): Promise<Key> {
    const k = opensslRsaKey(dir, name, bits);
    const signature = Buffer.from(await signDsse(k.key, PAYLOAD_TYPE, STATEMENT));
    return { ...k, keyId: keyIdOf(k.key), signature };
  }

  function mint(name: string, o: { key?: Key; subject?: string; extensions?: Extensions; ca?: OpensslCa } = {}) {
    return opensslIssue(dir, name, {
      keyFile: (o.key ?? eve).file,
      subject: o.subject ?? SIGNER,
      ca: o.ca ?? root,
      extensions: o.extensions ?? SIGNER_EXTENSIONS,
    });
  }

  /** verifyStatementSignatures over one signature by `k`, with `pem` as its certificate on the media. */
  function verify(pem: string | Buffer, k: Key = eve, at = new Date()) {
    return verifyStatementSignatures({
      signatures: [{ name: `${k.keyId}.sigstore.json`, bytes: k.signature }],
      certificates: new Map([[k.keyId, Buffer.from(pem)]]),
      anchors,
      threshold: 1,
      at,
    });
  }

  /** Refused with E_UNTRUSTED_SIGNER whose message is exactly the rule's reason in the import's sentence. */
  async function untrusted(pem: string | Buffer, reason: string, o: { key?: Key; at?: Date } = {}) {
    const k = o.key ?? eve;
    const err = await refusal(() => verify(pem, k, o.at), 'E_UNTRUSTED_SIGNER');
    expect(err).toBeInstanceOf(EcluseError);
    expect(err.context).toMatchObject({ check: 'signer-trust', keyIds: [k.keyId] });
    expect(err.message).toBe(
      `signature 1 of 1 was made by key ${shortKeyId(k.keyId)} whose certificate ${reason} ` +
        `(1 distinct trusted signer required, 0 found)`,
    );
    return err;
  }

  beforeAll(async () => {
    dir = tmpDir('certcheck');
    const site = path.join(dir, 'site');
    await initKeys({ out: site, signers: ['alice'], passphrase: null });
    anchors = loadTrustAnchors(path.join(site, 'trust'));
    root = { cert: path.join(site, 'root', 'cert.pem'), key: path.join(site, 'root', 'key.pem') };
    [eve, short, intermediate] = await Promise.all([key('eve', 3072), key('short', 2048), key('ica', 2048)]);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('control: an openssl-minted certificate with the ceremony extensions is trusted', () => {
    const pem = mint('good');
    expect(verify(pem).signers).toEqual([{ keyId: eve.keyId, name: 'eve', notAfter: expect.any(String) }]);
    expect(assessSignerCertificate(Buffer.from(pem), eve.keyId, anchors, new Date())).toMatchObject({ trusted: true });
  });

  it('rule 2: a certificate that does not parse (the PEM cut short)', async () => {
    const pem = mint('cut');
    const lines = pem.trimEnd().split('\n');
    const cut = [...lines.slice(0, 8), lines[lines.length - 1]].join('\n');
    await untrusted(cut, 'is not a readable X.509 certificate');
  });

  it('rule 4: a chain through an intermediate CA the site never issued (openssl made and signed it)', async () => {
    const icaPem = opensslIssue(dir, 'ica', {
      keyFile: intermediate.file,
      subject: '/CN=intermediate/O=ecluse',
      ca: root,
      extensions: CA_EXTENSIONS,
    });
    expect(opensslText(dir, icaPem)).toMatch(/CA:TRUE/);
    const ica = { cert: path.join(dir, 'ica.pem'), key: intermediate.file };
    const leaf = mint('via-ica', { ca: ica });
    // Even with the intermediate beside it in the same file, the leaf is not issued by the site's root.
    await untrusted(leaf, "was not issued by this site's root");
    await untrusted(`${leaf}${icaPem}`, "was not issued by this site's root");
  });

  it('rule 5: CA:TRUE on a signer certificate', async () => {
    const pem = mint('ca-true', {
      extensions: [...without('basicConstraints'), 'basicConstraints = critical, CA:TRUE'],
    });
    expect(opensslText(dir, pem)).toMatch(/CA:TRUE/);
    // keyUsage digitalSignature only: OpenSSL's own CA check (Node's X509Certificate.ca) says "not a CA" here.
    await untrusted(pem, "is a CA certificate, not a signer's");
    const withCertSign = mint('ca-true-certsign', {
      extensions: [
        'basicConstraints = critical, CA:TRUE',
        'keyUsage = critical, digitalSignature, keyCertSign',
        'extendedKeyUsage = codeSigning',
      ],
    });
    await untrusted(withCertSign, "is a CA certificate, not a signer's");
  });

  it('rule 6: an RSA key shorter than 3072 bits', async () => {
    const pem = mint('short', { key: short });
    expect(opensslText(dir, pem)).toMatch(/Public-Key: \(2048 bit\)/);
    await untrusted(pem, 'is not for an RSA key of at least 3072 bits', { key: short });
  });

  it('rule 7: the wrong role (OU=operator), and no role at all', async () => {
    await untrusted(mint('ou-operator', { subject: '/CN=eve/OU=operator/O=ecluse' }), 'does not have the signer role');
    await untrusted(mint('no-ou', { subject: '/CN=eve/O=ecluse' }), 'does not have the signer role');
  });

  it('rule 8: keyUsage missing, and keyUsage that also allows certificate signing', async () => {
    const none = mint('no-ku', { extensions: without('keyUsage') });
    expect(opensslText(dir, none)).not.toMatch(/X509v3 Key Usage/);
    await untrusted(none, 'does not allow digital signatures only (wrong key usage)');
    const certSign = mint('ku-certsign', {
      extensions: [...without('keyUsage'), 'keyUsage = critical, digitalSignature, keyCertSign'],
    });
    await untrusted(certSign, 'does not allow digital signatures only (wrong key usage)');
  });

  it('rule 9: the codeSigning extended key usage missing (or another purpose instead)', async () => {
    const none = mint('no-eku', { extensions: without('extendedKeyUsage') });
    expect(opensslText(dir, none)).not.toMatch(/Code Signing/);
    await untrusted(none, 'does not allow code signing');
    const tls = mint('eku-tls', { extensions: [...without('extendedKeyUsage'), 'extendedKeyUsage = serverAuth'] });
    await untrusted(tls, 'does not allow code signing');
  });

  it('rule 10: the site root is not valid at the check time (the time floor is past its notAfter)', async () => {
    const pem = mint('good-10');
    const after = new Date(Date.parse(anchors.root.validTo) + DAY);
    const err = await untrusted(pem, `chains to a root not valid on ${after.toISOString()}`, { at: after });
    expect(err.context.expiry).toBe(true);
  });

  it('rule 11: an expired signer certificate, and one not valid yet', async () => {
    const expired = opensslIssue(dir, 'expired', {
      keyFile: eve.file,
      subject: SIGNER,
      ca: root,
      extensions: SIGNER_EXTENSIONS,
      notBefore: new Date(Date.now() - 40 * DAY),
      notAfter: new Date(Date.now() - 10 * DAY),
    });
    const to = new crypto.X509Certificate(expired).validTo;
    const e1 = await untrusted(expired, `expired on ${new Date(to).toISOString()}`);
    expect(e1.context.expiry).toBe(true);

    const from = new Date(Math.floor((Date.now() + 10 * DAY) / 1000) * 1000);
    const future = opensslIssue(dir, 'future', {
      keyFile: eve.file,
      subject: SIGNER,
      ca: root,
      extensions: SIGNER_EXTENSIONS,
      notBefore: from,
      notAfter: new Date(from.getTime() + 30 * DAY),
    });
    const e2 = await untrusted(future, `is not valid until ${from.toISOString()} (not yet valid)`);
    expect(e2.context.expiry).toBe(true);
  });

  it('an independent root made by openssl, pinned as the site root: the same rules hold under it', async () => {
    const other = opensslRsaKey(dir, 'other-root', 3072);
    const otherPem = path.join(dir, 'other-root.pem');
    // A self-signed root: openssl req -x509 with the CA extensions.
    const cnf = path.join(dir, 'other-root.cnf');
    fs.writeFileSync(cnf, `[req]\ndistinguished_name = dn\n[dn]\n[v3]\n${CA_EXTENSIONS.join('\n')}\n`);
    execFileSync('openssl', [
      'req',
      '-x509',
      '-new',
      '-key',
      other.file,
      '-subj',
      '/CN=independent root/O=elsewhere',
      '-days',
      '365',
      '-config',
      cnf,
      '-extensions',
      'v3',
      '-out',
      otherPem,
    ]);
    const otherRoot = new crypto.X509Certificate(fs.readFileSync(otherPem));
    const pinned = { root: otherRoot, rootKeyId: keyIdOf(otherRoot.publicKey), rootVersion: 1 };
    const ca = { cert: otherPem, key: other.file };
    const good = mint('other-good', { ca });
    const noEku = mint('other-no-eku', { ca, extensions: without('extendedKeyUsage') });
    expect(assessSignerCertificate(Buffer.from(good), eve.keyId, pinned, new Date())).toMatchObject({ trusted: true });
    expect(assessSignerCertificate(Buffer.from(noEku), eve.keyId, pinned, new Date())).toEqual({
      trusted: false,
      reason: 'does not allow code signing',
      expiry: false,
    });
    // ...and the site's own root does not vouch for it.
    await untrusted(good, "was not issued by this site's root");
  });
});
