/** Schema pieces the signed documents of the format share (statement, vendor evidence). */
import { z } from 'zod';
import { LIMITS } from './limits.js';

const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `${bytes * 2} lowercase hex`);
export const sha256Hex = hex(32);
export const sha512Hex = hex(64);
export const md5Hex = hex(16);

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

/**
 * An image name as operators and Glance write them (FORMAT.md 4.7): `Ubuntu 24.04 LTS (Noble)`, `débian-13-é`. Unicode
 * in NFC (one spelling per name, so two names that look alike are one name), 1 to 255 characters (Glance's bound),
 * no control, format or separator characters other than the plain space (no tab, newline, bidi override, zero-width
 * character), no space at either end, no / or \ (belt and braces: a name is only ever data, nothing derived from it
 * becomes a path).
 */
export const IMAGE_NAME_MAX = 255;
const FORBIDDEN_IN_NAME = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Co}\p{Cs}\p{Cn}]|[\p{Zs}](?<! )/u;

/** Why `name` is not an image name, or null when it is one. */
export function imageNameProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if ([...name].length > IMAGE_NAME_MAX) return `is longer than ${IMAGE_NAME_MAX} characters`;
  if (name.normalize('NFC') !== name) return 'is not in Unicode NFC';
  const bad = FORBIDDEN_IN_NAME.exec(name);
  if (bad) {
    const cp = (bad[0].codePointAt(0) as number).toString(16).toUpperCase().padStart(4, '0');
    return `holds the control or invisible character U+${cp}`;
  }
  if (name.trim() !== name) return 'starts or ends with a space';
  if (/[/\\]/.test(name)) return 'holds a path separator (/ or \\)';
  return null;
}

export const imageName = z.string().superRefine((name, ctx) => {
  const problem = imageNameProblem(name);
  if (problem) ctx.addIssue({ code: 'custom', message: `the image name ${problem}` });
});
