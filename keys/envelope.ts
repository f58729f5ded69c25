/**
 * Reading one signature file from the media (format v1): a Sigstore bundle holding exactly one DSSE signature over
 * the statement, payload type PAYLOAD_TYPE, keyed by a public-key hint that is the signer's key id, with no
 * transparency-log entries or timestamps, stored as `signatures/<key-id>.sigstore.json`. Anything else is E_FORMAT.
 */
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { EcluseError } from '../sneakernet/errors.js';
import { KEY_ID_PATTERN, SIGNATURE_SUFFIX } from '../sneakernet/layout.js';
import { LIMITS } from '../sneakernet/limits.js';
import { PAYLOAD_TYPE, parseBoundedJson } from '../sneakernet/statement.js';
import { checkId } from '../sneakernet/check-ids.js';

export interface SignatureFile {
  /** The file name, as found on the media. */
  name: string;
  /** The key id the bundle names (its public-key hint), equal to the file name's stem. */
  keyId: string;
  /** The DSSE payload: the statement bytes. */
  payload: Buffer;
  bundle: Bundle;
}

function formatError(message: string): EcluseError {
  return new EcluseError('E_FORMAT', message, { check: checkId('signature-format') });
}

/** Parses and checks the shape of one signature file (no cryptography here). */
export function readSignatureFile(name: string, bytes: Buffer, payloadType: string = PAYLOAD_TYPE): SignatureFile {
  const what = `signature file ${name}`;
  const json = parseBoundedJson(bytes, what, LIMITS.signatureFileBytes);
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (e) {
    throw formatError(`${what} is not a Sigstore bundle: ${(e as Error).message}`);
  }
  if (bundle.content.$case !== 'dsseEnvelope') throw formatError(`${what} does not hold a DSSE envelope`);
  const envelope = bundle.content.dsseEnvelope;
  if (envelope.payloadType !== payloadType) {
    throw formatError(`${what} has payload type "${envelope.payloadType}", expected "${payloadType}"`);
  }
  if (envelope.signatures.length !== 1) {
    throw formatError(`${what} holds ${envelope.signatures.length} signatures, expected exactly 1`);
  }
  if (envelope.payload.length > LIMITS.statementBytes) {
    throw formatError(`${what} signs a statement larger than ${LIMITS.statementBytes} bytes`);
  }
  const material = bundle.verificationMaterial;
  if (material.content.$case !== 'publicKey') {
    throw formatError(`${what} is not keyed by a public key hint (format v1 uses no certificate in the bundle)`);
  }
  const keyId = material.content.publicKey.hint;
  if (!KEY_ID_PATTERN.test(keyId)) throw formatError(`${what} names a key id that is not 64 lowercase hex`);
  if (material.tlogEntries.length > 0 || (material.timestampVerificationData?.rfc3161Timestamps.length ?? 0) > 0) {
    throw formatError(`${what} carries transparency-log entries or timestamps, which format v1 does not use`);
  }
  if (name !== `${keyId}${SIGNATURE_SUFFIX}`) {
    throw formatError(
      `${what} is signed by key ${keyId.slice(0, 12)}… and should be named ${keyId}${SIGNATURE_SUFFIX}`,
    );
  }
  return { name, keyId, payload: envelope.payload, bundle };
}
