/**
 * What every kind of vendor feed declares (relay/feeds/config.ts for mirrors, glance-config.ts for an outside
 * Glance): its name, the vendor, the product (the artifact name at the site), the artifact type, and how a version is
 * read from a published name.
 */
import { z } from 'zod';

export const FEED_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/**
 * Default: the last `-` or `_` separated part that starts with a digit, before the extensions
 * (`demo-1.2.0.qcow2` → `1.2.0`, `cloud-13-20261101.qcow2` → `20261101`).
 */
export const DEFAULT_VERSION_PATTERN = '(?:^|[-_])([0-9][0-9A-Za-z.+~]*?)(?:\\.[A-Za-z][A-Za-z0-9]*)*$';

/** The fields shared by every feed kind (spread into each kind's strict object). */
export const commonFeedFields = {
  name: z.string().regex(FEED_NAME, 'letters, digits and . _ - (at most 64)'),
  vendor: z.string().min(1).max(255),
  product: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[A-Za-z0-9][A-Za-z0-9._+:~-]*$/, 'letters, digits and . _ + : ~ - only'),
  type: z.literal('vm-image').default('vm-image'),
  /** A regular expression on the published name whose first group is the version. */
  versionPattern: z.string().min(1).max(512).default(DEFAULT_VERSION_PATTERN),
};

/** Adds an issue when `pattern` is not a regular expression with a capturing group. */
export function checkVersionPattern(pattern: string, ctx: z.RefinementCtx): void {
  let problem: string | null = null;
  try {
    if (!/\((?!\?)/.test(new RegExp(pattern).source)) problem = 'it has no capturing group';
  } catch (e) {
    problem = (e as Error).message;
  }
  if (problem !== null) {
    ctx.addIssue({ code: 'custom', path: ['versionPattern'], message: `not a usable regular expression: ${problem}` });
  }
}

const VERSION = /^[A-Za-z0-9][A-Za-z0-9._+:~-]*$/;

/** `v` when it can be a version (an identifier of at most 255 characters), else null. */
export function asVersion(v: string | undefined | null): string | null {
  if (!v || !VERSION.test(v) || v.length > 255) return null;
  return v;
}

/** The version a published name carries by `versionPattern`, or null when it does not match or is not one. */
export function versionOf(config: { versionPattern: string }, name: string): string | null {
  return asVersion(new RegExp(config.versionPattern).exec(name)?.[1]);
}
