/**
 * Re-checking `glance-image` evidence at the import station (verifier/vendor-evidence-glance.ts) against the keys a
 * policy rule pins: a staged file, its statement digests, and evidence as the export station records it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf } from '../../keys/keyid.js';
import { type Artifact } from '../../sneakernet/statement.js';
import { vendorEvidenceSchema, type VendorEvidence } from '../../sneakernet/evidence.js';
import type { StagedArtifact } from '../../verifier/staging.js';
import { checkGlanceEvidence } from '../../verifier/vendor-evidence-glance.js';
import { ecSigner, rsaSigner, type CertSigner } from '../relay/glance-fixtures.js';

type GlanceEvidence = Extract<VendorEvidence, { kind: 'glance-image' }>;
const hash = (algo: string, b: Buffer) => crypto.createHash(algo).update(b).digest('hex');
const ctx = { artifact: 'vendor-os@1.0', rule: 'vendor' };

describe('glance-image vendor evidence, inside', () => {
  let dir: string;
  let file: string;
  let data: Buffer;
  let vendor: CertSigner;
  let ec: CertSigner;
  let other: CertSigner;
  let artifact: Artifact;
  let staged: StagedArtifact;

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-glance-evidence-'));
    data = crypto.randomBytes(200_000);
    file = path.join(dir, 'image');
    fs.writeFileSync(file, data);
    vendor = rsaSigner('vendor');
    ec = ecSigner('vendor-ec');
    other = rsaSigner('other');
    artifact = {
      name: 'vendor-os',
      version: '1.0',
      type: 'vm-image',
      size: data.length,
      sha256: hash('sha256', data),
      sha512: hash('sha512', data),
      diskFormat: 'raw',
      containerFormat: 'bare',
      properties: {},
      provenance: { vendor: 'vendorix', source: 'x', addedAt: '2026-01-01T00:00:00Z' },
    };
    staged = {
      index: 0,
      artifact,
      file,
      digests: { sha256: artifact.sha256, sha512: artifact.sha512, md5: hash('md5', data) },
      attested: [],
    };
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function evidence(signer: CertSigner | null, over = data): GlanceEvidence {
    const props = signer?.sign(over);
    const e = vendorEvidenceSchema.parse({
      kind: 'glance-image',
      endpoint: 'https://glance.staging.example:9292',
      imageId: crypto.randomUUID(),
      imageName: 'vendor-os-1.0',
      osHashAlgo: 'sha512',
      osHashValue: artifact.sha512,
      checksum: hash('md5', data),
      signature:
        signer && props
          ? {
              certificateUuid: signer.uuid,
              keyId: keyIdOf(new crypto.X509Certificate(signer.certPem).publicKey),
              hashMethod: signer.hashMethod,
              keyType: signer.keyType,
              value: props.img_signature,
            }
          : null,
    });
    return e as GlanceEvidence;
  }

  const pem = (s: CertSigner) =>
    new crypto.X509Certificate(s.certPem).publicKey.export({ type: 'spki', format: 'pem' }).toString();

  it('accepts a signature verifying with a pinned certificate or public key (RSA-PSS and ECDSA)', async () => {
    expect(await checkGlanceEvidence(evidence(vendor), artifact, staged, [other.certPem, vendor.certPem], ctx)).toMatch(
      /Glance signature/,
    );
    expect(await checkGlanceEvidence(evidence(ec), artifact, staged, [pem(ec)], ctx)).toMatch(/Glance signature/);
  });

  it('refuses a signature by a key the policy does not pin: E_VENDOR_UNTRUSTED', async () => {
    await expect(
      checkGlanceEvidence(evidence(vendor), artifact, staged, [other.certPem, ec.certPem], ctx),
    ).rejects.toMatchObject({
      code: 'E_VENDOR_UNTRUSTED',
    });
  });

  it('refuses a signature by the pinned key that does not verify over the bytes: E_VENDOR_SIGNATURE', async () => {
    await expect(
      checkGlanceEvidence(evidence(vendor, crypto.randomBytes(10)), artifact, staged, [vendor.certPem], ctx),
    ).rejects.toMatchObject({ code: 'E_VENDOR_SIGNATURE' });
  });

  it('refuses provenance-only evidence (an unsigned image) under a rule pinning keys: E_VENDOR_UNTRUSTED', async () => {
    await expect(checkGlanceEvidence(evidence(null), artifact, staged, [vendor.certPem], ctx)).rejects.toMatchObject({
      code: 'E_VENDOR_UNTRUSTED',
      message: expect.stringMatching(/provenance only/),
    });
  });

  it('refuses evidence whose published digests are not the artifact: E_VENDOR_DIGEST', async () => {
    const e = { ...evidence(vendor), osHashValue: hash('sha512', Buffer.from('other')) };
    await expect(checkGlanceEvidence(e, artifact, staged, [vendor.certPem], ctx)).rejects.toMatchObject({
      code: 'E_VENDOR_DIGEST',
    });
    const m = { ...evidence(vendor), checksum: '0'.repeat(32) };
    await expect(checkGlanceEvidence(m, artifact, staged, [vendor.certPem], ctx)).rejects.toMatchObject({
      code: 'E_VENDOR_DIGEST',
    });
  });

  it('does not use a pinned certificate outside its validity', async () => {
    const expired = rsaSigner('expired', new Date(Date.now() - 20 * 365 * 86_400_000));
    await expect(
      checkGlanceEvidence(evidence(expired), artifact, staged, [expired.certPem], ctx),
    ).rejects.toMatchObject({
      code: 'E_VENDOR_UNTRUSTED',
    });
  });

  it('verify mode (nothing staged) checks that the evidence names a pinned key, the bytes at import', async () => {
    const notStaged = { ...staged, file: null };
    expect(await checkGlanceEvidence(evidence(vendor), artifact, notStaged, [vendor.certPem], ctx)).toMatch(
      /at import/,
    );
    await expect(
      checkGlanceEvidence(evidence(vendor), artifact, notStaged, [other.certPem], ctx),
    ).rejects.toMatchObject({
      code: 'E_VENDOR_UNTRUSTED',
    });
  });
});
