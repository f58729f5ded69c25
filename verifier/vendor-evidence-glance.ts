/**
 * Re-checking `glance-image` evidence (docs/FORMAT.md 4.5) at the import station, for an artifact whose policy rule
 * pins vendor keys: the image must have come with a Glance image signature (provenance-only evidence is refused,
 * E_VENDOR_UNTRUSTED), what the outside Glance published must be this artifact's digests (E_VENDOR_DIGEST), and the
 * signature must verify over the staged bytes with one of the PEM public keys or certificates the rule pins (a
 * certificate only within its validity). None of them verifies it: E_VENDOR_SIGNATURE when the evidence names one of
 * them (the key id is informative, never trusted: it only chooses the code), else E_VENDOR_UNTRUSTED.
 *
 * `ecluse verify` stages nothing: the signature over the bytes is checked at import; verify checks the rest and that
 * the evidence names a pinned key.
 */
import fs from 'node:fs';
import { EcluseError, type ErrorCode } from '../sneakernet/errors.js';
import type { Artifact } from '../sneakernet/statement.js';
import type { VendorEvidence } from '../sneakernet/evidence.js';
import { streamingVerifier, usableKeys } from '../keys/glance-signature.js';
import type { StagedArtifact } from './staging.js';

type GlanceEvidence = Extract<VendorEvidence, { kind: 'glance-image' }>;

export async function checkGlanceEvidence(
  e: GlanceEvidence,
  a: Artifact,
  staged: StagedArtifact | undefined,
  pinned: string[],
  ctx: { artifact: string; rule: string },
): Promise<string> {
  const what = `${a.name} ${a.version}`;
  const fail = (code: ErrorCode, check: string, message: string) =>
    new EcluseError(code, `${what}: ${message}`, { check, ...ctx });
  const published = e.osHashAlgo === 'sha512' ? a.sha512 : e.osHashAlgo === 'sha256' ? a.sha256 : undefined;
  if (published !== undefined && e.osHashValue !== published) {
    throw fail('E_VENDOR_DIGEST', 'vendor-digest', `Glance published another ${e.osHashAlgo} for image ${e.imageId}`);
  }
  if (e.checksum !== null && staged && e.checksum !== staged.digests.md5) {
    throw fail('E_VENDOR_DIGEST', 'vendor-digest', `Glance published another checksum (md5) for image ${e.imageId}`);
  }
  const sig = e.signature;
  if (sig === null) {
    throw fail(
      'E_VENDOR_UNTRUSTED',
      'vendor-evidence',
      `image ${e.imageId} came from ${e.endpoint} without a vendor signature (provenance only), and policy rule ${ctx.rule} requires one`,
    );
  }
  const keys = usableKeys(pinned, sig.keyType);
  const named = keys.some((k) => k.keyId === sig.keyId);
  const file = staged?.file ?? null;
  if (!file) {
    if (!named) {
      throw fail(
        'E_VENDOR_UNTRUSTED',
        'vendor-key',
        `the Glance image signature names key ${sig.keyId.slice(0, 12)}…, not one policy rule ${ctx.rule} pins`,
      );
    }
    return `${ctx.artifact} (Glance signature by ${sig.keyId.slice(0, 12)}: checked over the bytes at import)`;
  }
  if (keys.length === 0) {
    throw fail(
      'E_VENDOR_UNTRUSTED',
      'vendor-key',
      `policy rule ${ctx.rule} pins no key that can check a ${sig.keyType} Glance image signature (certificates only while valid)`,
    );
  }
  const verifiers = keys.map(() => streamingVerifier(sig));
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
    for (const v of verifiers) v.update(chunk as Buffer);
  }
  const by = keys.find((k, i) => verifiers[i]?.verify(k.key));
  if (!by) {
    if (named) {
      throw fail(
        'E_VENDOR_SIGNATURE',
        'vendor-signature',
        `the Glance image signature by the pinned key ${sig.keyId.slice(0, 12)}… does not verify`,
      );
    }
    throw fail(
      'E_VENDOR_UNTRUSTED',
      'vendor-key',
      `the Glance image signature does not verify with any key policy rule ${ctx.rule} pins (${keys.length} usable)`,
    );
  }
  return `${ctx.artifact} (Glance signature ${by.keyId.slice(0, 12)})`;
}
