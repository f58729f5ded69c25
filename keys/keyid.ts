/**
 * Key identifiers (format v1): the lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo, DER-encoded.
 * Signature files and certificates on the media are named after it (`<key-id>.sigstore.json`, `<key-id>.pem`).
 */
import crypto from 'node:crypto';

/** The key id of `publicKey` (a public or private KeyObject: the public half is used). */
export function keyIdOf(publicKey: crypto.KeyObject): string {
  const pub = publicKey.type === 'private' ? crypto.createPublicKey(publicKey) : publicKey;
  const spki = pub.export({ type: 'spki', format: 'der' });
  return crypto.createHash('sha256').update(spki).digest('hex');
}

/** The first 12 hex digits of a key id, followed by an ellipsis: how operators see a key in one-line messages. */
export function shortKeyId(keyId: string): string {
  return `${keyId.slice(0, 12)}…`;
}
