/**
 * The one way écluse runs @sigstore/verify: offline, trusting no Fulcio, Rekor, CT log or TSA, with a key finder that
 * returns exactly one key chosen by the caller (the bundle's hint is attacker-chosen: it may only be checked against,
 * never used to look a key up). Site signatures (verify.ts) and vendor signatures (vendor.ts) both go through here.
 */
import type crypto from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import { VerificationError, Verifier, toSignedEntity, toTrustMaterial, type KeyFinderFunc } from '@sigstore/verify';

const EMPTY_TRUSTED_ROOT: Parameters<typeof toTrustMaterial>[0] = {
  mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
  tlogs: [],
  certificateAuthorities: [],
  ctlogs: [],
  timestampAuthorities: [],
};

/**
 * True when `bundle` verifies with `publicKey`. With `hint`, the bundle must name that key id. `artifact` is needed
 * for a message signature (not for DSSE).
 */
export function verifiesWithKey(
  bundle: Bundle,
  publicKey: crypto.KeyObject,
  o: { hint?: string; artifact?: Buffer } = {},
): boolean {
  const finder: KeyFinderFunc = (hint) => {
    if (o.hint !== undefined && hint !== o.hint) {
      throw new VerificationError({ code: 'PUBLIC_KEY_ERROR', message: 'unexpected key hint' });
    }
    return { publicKey, validFor: () => true };
  };
  const verifier = new Verifier(toTrustMaterial(EMPTY_TRUSTED_ROOT, finder), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  try {
    verifier.verify(toSignedEntity(bundle, o.artifact));
    return true;
  } catch {
    return false;
  }
}
