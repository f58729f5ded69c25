/**
 * The image signature over a digest computed elsewhere (verifier/image-signature.ts signSha256Digest): RSA-PSS with
 * SHA-256, MGF1 SHA-256 and the longest salt, as OpenSSL checks it over the bytes themselves (what cursive does for
 * Nova).
 */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signSha256Digest } from '../../verifier/image-signature.js';

const verifies = (key: crypto.KeyObject, data: Buffer, signature: string, saltLength: number) =>
  crypto.verify(
    'sha256',
    data,
    { key: crypto.createPublicKey(key), padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength },
    Buffer.from(signature, 'base64'),
  );

describe('signSha256Digest', () => {
  for (const bits of [2048, 3072]) {
    it(`signs with RSA-PSS, maximum salt, a ${bits}-bit key: OpenSSL verifies it over the bytes`, () => {
      const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: bits });
      const data = crypto.randomBytes(1000);
      const sha256 = crypto.createHash('sha256').update(data).digest('hex');
      const signature = signSha256Digest(privateKey, sha256);
      expect(Buffer.from(signature, 'base64')).toHaveLength(Math.ceil(bits / 8));
      const maxSalt = Math.ceil((bits - 1) / 8) - 32 - 2;
      expect(verifies(privateKey, data, signature, maxSalt)).toBe(true);
      expect(verifies(privateKey, data, signature, crypto.constants.RSA_PSS_SALTLEN_AUTO)).toBe(true);
      // Other bytes, or another salt length, do not verify: the check can fail.
      expect(verifies(privateKey, Buffer.concat([data, Buffer.from('!')]), signature, maxSalt)).toBe(false);
      expect(verifies(privateKey, data, signature, 32)).toBe(false);
      // A fresh salt each time.
      expect(signSha256Digest(privateKey, sha256)).not.toBe(signature);
    });
  }
});
