import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSigner, initKeys } from '../../keys/ceremony.js';
import { loadSigner, type LoadedSigner } from '../../keys/signer.js';
import { loadTrustAnchors, type TrustAnchors } from '../../keys/trust.js';
import { verifyStatementSignatures, type VerifyStatementInput } from '../../keys/verify.js';
import { PASS, refusal, tmpDir } from './fixtures.js';

const STATEMENT = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', n: 1 }));
const OTHER_STATEMENT = Buffer.from(JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', n: 2 }));
const YEAR_MS = 365 * 86_400_000;

type Sig = { name: string; bytes: Buffer };

describe('statement signatures', () => {
  let base: string;
  let anchors: TrustAnchors;
  let alice: LoadedSigner;
  let bob: LoadedSigner;
  let mallory: LoadedSigner; // a signer of another site's root
  let expired: LoadedSigner; // issued three years ago for one day
  let rootAsSigner: LoadedSigner; // the site root CA key itself
  let certs: Map<string, Buffer>;

  async function sign(s: LoadedSigner, payload = STATEMENT): Promise<Sig> {
    return { name: `${s.keyId}.sigstore.json`, bytes: Buffer.from(await s.signStatement(payload)) };
  }

  function verify(signatures: Sig[], over: Partial<VerifyStatementInput> = {}) {
    return verifyStatementSignatures({
      signatures,
      certificates: certs,
      anchors,
      threshold: 1,
      at: new Date(),
      ...over,
    });
  }

  /** Rewrites fields of a signature file's JSON. */
  function edit(sig: Sig, change: (json: { dsseEnvelope: Record<string, unknown> }) => void, name = sig.name): Sig {
    const json = JSON.parse(sig.bytes.toString()) as { dsseEnvelope: Record<string, unknown> };
    change(json);
    return { name, bytes: Buffer.from(JSON.stringify(json)) };
  }

  beforeAll(async () => {
    base = tmpDir('verify');
    const site = path.join(base, 'site');
    const other = path.join(base, 'other');
    const past = new Date(Date.now() - 3 * YEAR_MS);
    await Promise.all([
      initKeys({ out: site, signers: ['alice', 'bob'], passphrase: PASS }),
      initKeys({ out: other, signers: ['mallory'], passphrase: null }),
    ]);
    await addSigner({ keyDir: site, name: 'old', passphrase: PASS, validityDays: 1, now: past });
    anchors = loadTrustAnchors(path.join(site, 'trust'));
    const pass = () => Promise.resolve(PASS);
    alice = await loadSigner(path.join(site, 'signers/alice'), pass);
    bob = await loadSigner(path.join(site, 'signers/bob'), pass);
    mallory = await loadSigner(path.join(other, 'signers/mallory'), () => Promise.resolve(null));
    expired = await loadSigner(path.join(site, 'signers/old'), pass, { now: new Date(past.getTime() + 3600_000) });
    const rootDir = path.join(base, 'root-as-signer');
    fs.cpSync(path.join(site, 'root'), rootDir, { recursive: true });
    fs.writeFileSync(path.join(rootDir, 'signer.json'), JSON.stringify({ name: 'root' }));
    rootAsSigner = await loadSigner(rootDir, pass);
    certs = new Map(
      [alice, bob, mallory, expired, rootAsSigner].map((s) => [s.keyId, Buffer.from(s.certificatePem)] as const),
    );
  });
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

  it('verifies one signature and returns the payload and signer', async () => {
    const out = verify([await sign(alice)]);
    expect(out.payload.equals(STATEMENT)).toBe(true);
    expect(out.signers).toEqual([{ keyId: alice.keyId, name: 'alice', notAfter: expect.any(String) }]);
  });

  it('verifies two distinct signers against a threshold of 2', async () => {
    const out = verify([await sign(alice), await sign(bob)], { threshold: 2 });
    expect(out.signers.map((s) => s.name).sort()).toEqual(['alice', 'bob']);
  });

  it('refuses an empty set of signatures', async () => {
    const err = await refusal(() => verify([]), 'E_SIGNATURE');
    expect(err.message).toBe('the bundle carries no signature');
  });

  it('counts the same signer twice once (E_THRESHOLD)', async () => {
    const twice = [await sign(alice), await sign(alice)];
    const t = await refusal(() => verify(twice, { threshold: 2 }), 'E_THRESHOLD');
    expect(t.message).toBe('2 distinct trusted signers required, 1 found');
    expect(t.context.check).toBe('threshold');
  });

  it('refuses a tampered payload (E_SIGNATURE)', async () => {
    const tampered = edit(await sign(alice), (j) => {
      j.dsseEnvelope.payload = OTHER_STATEMENT.toString('base64');
    });
    const err = await refusal(() => verify([tampered]), 'E_SIGNATURE');
    expect(err.message).toContain(alice.keyId.slice(0, 12));
    expect(err.message).toContain('alice');
    expect(err.context.check).toBe('signature');
  });

  it('refuses signatures over two different statements', async () => {
    const sigs = [await sign(alice), await sign(bob, OTHER_STATEMENT)];
    const e = await refusal(() => verify(sigs, { threshold: 2 }), 'E_SIGNATURE');
    expect(e.message).toBe('the signatures are over different statements');
  });

  it("refuses a signer issued by another site's root (E_UNTRUSTED_SIGNER)", async () => {
    const e = await refusal(async () => verify([await sign(mallory)]), 'E_UNTRUSTED_SIGNER');
    expect(e.message).toContain(`signature 1 of 1 was made by key ${mallory.keyId.slice(0, 12)}`);
    expect(e.message).toContain("was not issued by this site's root");
    expect(e.context.check).toBe('signer-trust');
  });

  it('refuses a hint naming a key whose certificate is not on the media', async () => {
    const certsWithoutAlice = new Map([...certs].filter(([id]) => id !== alice.keyId));
    const e = await refusal(
      async () => verify([await sign(alice)], { certificates: certsWithoutAlice }),
      'E_UNTRUSTED_SIGNER',
    );
    expect(e.message).toMatch(/not on the media/);
  });

  it("refuses a hint that borrows a trusted signer's identity", async () => {
    // mallory signs, but names alice's key: alice's certificate is trusted, the signature is not hers.
    const forged = edit(await sign(mallory), () => undefined, `${alice.keyId}.sigstore.json`);
    const json = JSON.parse(forged.bytes.toString()) as { verificationMaterial: { publicKey: { hint: string } } };
    json.verificationMaterial.publicKey.hint = alice.keyId;
    await refusal(() => verify([{ name: forged.name, bytes: Buffer.from(JSON.stringify(json)) }]), 'E_SIGNATURE');
    // mallory's certificate presented under alice's key id is for another key.
    const swapped = new Map(certs).set(alice.keyId, Buffer.from(mallory.certificatePem));
    const e = await refusal(async () => verify([await sign(alice)], { certificates: swapped }), 'E_UNTRUSTED_SIGNER');
    expect(e.message).toMatch(/different key/);
  });

  it('refuses an expired signer, saying so', async () => {
    const e = await refusal(async () => verify([await sign(expired)]), 'E_UNTRUSTED_SIGNER');
    expect(e.message).toMatch(/expired on \d{4}-/);
    expect(e.context.expiry).toBe(true);
    // Trusted signers are not refused for it: only the expired one is named.
    const both = [await sign(alice), await sign(expired)];
    const t = await refusal(() => verify(both, { threshold: 2 }), 'E_UNTRUSTED_SIGNER');
    expect(t.message).toMatch(/^signature 2 of 2 .*expired on/);
    // A signer not yet valid at the check time is refused the same way.
    const early = await refusal(
      async () => verify([await sign(alice)], { at: new Date(Date.now() - YEAR_MS) }),
      'E_UNTRUSTED_SIGNER',
    );
    expect(early.context.expiry).toBe(true);
  });

  it('refuses a CA certificate used as a signer', async () => {
    const e = await refusal(async () => verify([await sign(rootAsSigner)]), 'E_UNTRUSTED_SIGNER');
    expect(e.message).toMatch(/CA certificate/);
  });

  it('names the untrusted signature when the threshold is missed by it', async () => {
    const e = await refusal(
      async () => verify([await sign(alice), await sign(mallory)], { threshold: 2 }),
      'E_UNTRUSTED_SIGNER',
    );
    expect(e.message).toMatch(/^signature 2 of 2 was made by key .* \(2 distinct trusted signers required, 1 found\)$/);
    // One trusted signature is enough at threshold 1, whatever else is on the media.
    expect(verify([await sign(alice), await sign(mallory)]).signers).toHaveLength(1);
  });

  it('refuses malformed signature files (E_FORMAT)', async () => {
    const good = await sign(alice);
    await refusal(() => verify([{ ...good, name: `${bob.keyId}.sigstore.json` }]), 'E_FORMAT');
    await refusal(() => verify([{ name: good.name, bytes: Buffer.from('{"not":"a bundle"}') }]), 'E_FORMAT');
    await refusal(() => verify([{ name: good.name, bytes: Buffer.from('nope') }]), 'E_FORMAT');
    const wrongType = edit(good, (j) => {
      j.dsseEnvelope.payloadType = 'text/plain';
    });
    await refusal(() => verify([wrongType]), 'E_FORMAT');
    const twoSigs = edit(good, (j) => {
      const sigs = j.dsseEnvelope.signatures as unknown[];
      j.dsseEnvelope.signatures = [...sigs, ...sigs];
    });
    await refusal(() => verify([twoSigs]), 'E_FORMAT');
    await refusal(() => verify(Array.from({ length: 17 }, () => good)), 'E_FORMAT');
  });
});
