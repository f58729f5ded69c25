/**
 * Cosign signatures of OCI images (docs/FORMAT.md 4.5 `cosign` evidence), verified offline against pinned vendor
 * keys: a Sigstore bundle, keyed by a public key (no Fulcio, no Rekor), whose message signature is over the
 * simple-signing payload bytes; the payload, parsed strictly, must say it is a cosign container image signature and
 * name the image's manifest digest (`critical.image["docker-manifest-digest"]`), else E_VENDOR_DIGEST. Both stations
 * use it: the export station when it takes an image in, the import station when its policy pins vendor keys.
 */
import crypto from 'node:crypto';
import { z } from 'zod';
import { EcluseError } from '../sneakernet/errors.js';
import { keyIdOf } from './keyid.js';
import { readVendorBundle } from './vendor.js';
import { checkId } from '../sneakernet/check-ids.js';

export const COSIGN_TYPE = 'cosign container image signature';
const MAX_PAYLOAD = 64 * 1024;

const payloadSchema = z.looseObject({
  critical: z.looseObject({
    type: z.string().max(256),
    image: z.looseObject({ 'docker-manifest-digest': z.string().regex(/^sha256:[0-9a-f]{64}$/) }),
    identity: z.looseObject({ 'docker-reference': z.string().max(4096) }).optional(),
  }),
  optional: z.record(z.string().max(1024), z.unknown()).nullable().optional(),
});

export interface CosignCheck {
  /** The simple-signing payload, as signed. */
  payload: Buffer;
  /** The Sigstore bundle (JSON) carrying the message signature over `payload`. */
  bundle: Buffer;
  /** Pinned vendor public keys (PEM SPKI). */
  keys: string[];
  /** The image's top manifest digest, `sha256:<hex>`. */
  digest: string;
  what: string;
}

function signatureError(what: string, why: string): EcluseError {
  return new EcluseError('E_VENDOR_SIGNATURE', `${what}: ${why}`, { check: checkId('vendor-signature') });
}

/** Returns the key id (SHA-256 of the SPKI DER) of the pinned key that verified the signature. */
export function verifyCosignSignature(c: CosignCheck): { keyId: string } {
  if (c.payload.length > MAX_PAYLOAD) throw signatureError(c.what, `the cosign payload is over ${MAX_PAYLOAD} bytes`);
  const bundle = readVendorBundle(c.bundle, c.what);
  if (bundle.verificationMaterial.content.$case !== 'publicKey') {
    throw new EcluseError(
      'E_VENDOR_UNTRUSTED',
      `${c.what}: the cosign signature is certificate-keyed (keyless); offline only a pinned vendor key is accepted`,
      { check: checkId('vendor-key') },
    );
  }
  if (bundle.content.$case !== 'messageSignature') {
    throw signatureError(c.what, 'the cosign bundle holds no message signature over the payload');
  }
  const { signature, messageDigest } = bundle.content.messageSignature;
  const payloadSha256 = crypto.createHash('sha256').update(c.payload).digest();
  if (messageDigest && messageDigest.digest.length > 0 && !messageDigest.digest.equals(payloadSha256)) {
    throw signatureError(c.what, 'the cosign bundle signs another payload than the one carried');
  }
  const keys = c.keys.map((pem) => crypto.createPublicKey(pem));
  if (keys.length === 0) throw new EcluseError('E_VENDOR_UNTRUSTED', `${c.what}: no vendor key is pinned`);
  const verifiedBy = keys.find((key) => {
    try {
      return crypto.verify('sha256', c.payload, key, signature);
    } catch {
      return false;
    }
  });
  if (!verifiedBy) {
    const hint = bundle.verificationMaterial.content.publicKey.hint;
    const pinned = keys.flatMap((k) => {
      const id = keyIdOf(k);
      return [id, Buffer.from(id, 'hex').toString('base64')];
    });
    if (hint !== '' && pinned.includes(hint)) {
      throw signatureError(c.what, 'the cosign signature by the pinned vendor key does not verify');
    }
    throw new EcluseError(
      'E_VENDOR_UNTRUSTED',
      `${c.what}: the cosign signature does not verify with any pinned vendor key (${keys.length} pinned)`,
      { check: checkId('vendor-key') },
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(c.payload));
  } catch {
    throw signatureError(c.what, 'the signed cosign payload is not JSON');
  }
  const p = payloadSchema.safeParse(parsed);
  if (!p.success) throw signatureError(c.what, 'the signed cosign payload is not a simple-signing document');
  if (p.data.critical.type !== COSIGN_TYPE) {
    throw signatureError(
      c.what,
      `the signed payload is a "${p.data.critical.type.slice(0, 80)}", not a ${COSIGN_TYPE}`,
    );
  }
  const named = p.data.critical.image['docker-manifest-digest'];
  if (named !== c.digest) {
    throw new EcluseError('E_VENDOR_DIGEST', `${c.what}: the vendor signed the image ${named}, not ${c.digest}`, {
      check: checkId('vendor-digest'),
    });
  }
  return { keyId: keyIdOf(verifiedBy) };
}
