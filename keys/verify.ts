/**
 * m-of-n verification of the statement's signatures (import station). Each signature file is read strictly
 * (envelope.ts); every signature must be over the same bytes; each signer's certificate, from the media, must be
 * trusted under the pinned root at the check time (certcheck.ts); each signature is then checked cryptographically
 * with @sigstore/verify, offline, using a key finder that returns only the key of that certificate. Signers are counted
 * by distinct key id.
 */
import crypto from 'node:crypto';
import { EcluseError } from '../sneakernet/errors.js';
import { LIMITS } from '../sneakernet/limits.js';
import { assessSignerCertificate } from './certcheck.js';
import { verifiesWithKey } from './offline-verifier.js';
import { readSignatureFile, type SignatureFile } from './envelope.js';
import { shortKeyId } from './keyid.js';
import type { TrustAnchors } from './trust.js';
import { checkId } from '../sneakernet/check-ids.js';

export interface VerifyStatementInput {
  /** The signature files: name as on the media (`<key-id>.sigstore.json`) and content. */
  signatures: Array<{ name: string; bytes: Buffer }>;
  /** The certificates on the media, by key id (`certificates/<key-id>.pem`). */
  certificates: Map<string, Buffer>;
  anchors: TrustAnchors;
  /** Distinct trusted signers required. */
  threshold: number;
  /** The time the certificates must be valid at (the verifier's time floor). */
  at: Date;
  /** Revoked key ids, with what to say about each (from the newest revocation list accepted). */
  revoked?: ReadonlyMap<string, string>;
}

export interface VerifiedStatement {
  payload: Buffer;
  signers: Array<{ keyId: string; name: string; notAfter: string }>;
}

/** Verifies `file` with exactly `publicKey`; the hint must be the key id already tied to it. */
export function cryptoValid(file: SignatureFile, publicKey: crypto.KeyObject): boolean {
  return verifiesWithKey(file.bundle, publicKey, { hint: file.keyId });
}

export function verifyStatementSignatures(input: VerifyStatementInput): VerifiedStatement {
  if (!Number.isInteger(input.threshold) || input.threshold < 1) {
    throw new EcluseError('E_INPUT', `the signature threshold must be a whole number of at least 1`, {
      check: checkId('threshold'),
    });
  }
  const total = input.signatures.length;
  if (total === 0)
    throw new EcluseError('E_SIGNATURE', 'the bundle carries no signature', { check: checkId('signature') });
  if (total > LIMITS.signatures) {
    throw new EcluseError(
      'E_FORMAT',
      `the bundle carries ${total} signatures, more than the ${LIMITS.signatures} allowed`,
      {
        check: checkId('signature-format'),
      },
    );
  }
  const files = input.signatures.map((s) => readSignatureFile(s.name, s.bytes));
  const payload = (files[0] as SignatureFile).payload;
  if (files.some((f) => !f.payload.equals(payload))) {
    throw new EcluseError('E_SIGNATURE', 'the signatures are over different statements', {
      check: checkId('signature'),
    });
  }
  const trusted = new Map<string, { keyId: string; name: string; notAfter: string }>();
  const untrusted: Array<{ text: string; keyId: string; expiry: boolean }> = [];
  files.forEach((file, i) => {
    const label = `signature ${i + 1} of ${total}`;
    const revocation = input.revoked?.get(file.keyId);
    if (revocation !== undefined) {
      throw new EcluseError('E_REVOKED', `${label} was made by key ${shortKeyId(file.keyId)}, ${revocation}`, {
        check: checkId('revocation'),
        keyId: file.keyId,
      });
    }
    const verdict = assessSignerCertificate(input.certificates.get(file.keyId), file.keyId, input.anchors, input.at);
    if (!verdict.trusted) {
      untrusted.push({
        text: `${label} was made by key ${shortKeyId(file.keyId)} whose certificate ${verdict.reason}`,
        keyId: file.keyId,
        expiry: verdict.expiry,
      });
      return;
    }
    if (!cryptoValid(file, verdict.publicKey)) {
      throw new EcluseError(
        'E_SIGNATURE',
        `${label} (key ${shortKeyId(file.keyId)}, signer ${verdict.name}) does not verify over the statement`,
        { check: checkId('signature'), keyId: file.keyId, signer: verdict.name },
      );
    }
    trusted.set(file.keyId, { keyId: file.keyId, name: verdict.name, notAfter: verdict.notAfter });
  });
  const found = trusted.size;
  const counted = `${input.threshold} distinct trusted signer${input.threshold === 1 ? '' : 's'} required, ${found} found`;
  if (found < input.threshold && untrusted.length > 0) {
    throw new EcluseError('E_UNTRUSTED_SIGNER', `${untrusted.map((u) => u.text).join('; ')} (${counted})`, {
      check: checkId('signer-trust'),
      keyIds: untrusted.map((u) => u.keyId),
      expiry: untrusted.some((u) => u.expiry),
    });
  }
  if (found < input.threshold) throw new EcluseError('E_THRESHOLD', counted, { check: checkId('threshold') });
  return { payload, signers: [...trusted.values()] };
}
