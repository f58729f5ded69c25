/** Schema pieces the signed documents of the format share (statement, vendor evidence). */
import { z } from 'zod';
import { LIMITS } from './limits.js';

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `${bytes * 2} lowercase hex`);
export const sha256Hex = hex(32);
export const sha512Hex = hex(64);

/** Standard base64 (RFC 4648 §4, padded) of at most `maxChars` characters. */
export const base64 = (maxChars: number) =>
  z
    .string()
    .min(1)
    .max(maxChars)
    .regex(/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/, 'base64');

/** Names, versions and ids: printable, no path separators, no control characters. */
export const identifier = z
  .string()
  .min(1)
  .max(LIMITS.nameLength)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+:~-]*$/, 'letters, digits and . _ + : ~ - only');
/** A size or offset in bytes within an artifact. */
export const artifactSize = z.number().int().nonnegative().max(LIMITS.artifactBytes);
