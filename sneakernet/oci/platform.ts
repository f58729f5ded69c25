/**
 * Platforms of OCI images (`os/architecture[/variant]`): how operators write them (`--platform linux/arm64/v8`), how
 * the statement records them (docs/FORMAT.md 4.9 `image.platforms`) and when an index entry matches one asked for.
 */
import { z } from 'zod';
import { EcluseError } from '../errors.js';
import { platformWord } from './manifest.js';
import { checkId } from '../check-ids.js';

export const platformSchema = z.strictObject({
  os: platformWord,
  architecture: platformWord,
  variant: platformWord.optional(),
});
export type Platform = z.infer<typeof platformSchema>;

/** `linux/arm64/v8`, `linux/amd64`: the one spelling of a platform in messages, the CLI and the catalog. */
export function platformKey(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** Reads `OS/ARCH[/VARIANT]` as an operator typed it (E_USAGE when it is not one). */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  const parsed =
    parts.length === 2 || parts.length === 3
      ? platformSchema.safeParse({ os: parts[0], architecture: parts[1], ...(parts[2] ? { variant: parts[2] } : {}) })
      : null;
  if (!parsed?.success) {
    throw new EcluseError('E_USAGE', `--platform ${text} is not OS/ARCH or OS/ARCH/VARIANT (e.g. linux/arm64/v8)`, {
      check: checkId('platform'),
    });
  }
  return parsed.data;
}

/** Whether the platform `p` of an index entry is one the operator asked for (no variant asked: any variant). */
export function platformMatches(asked: Platform, p: Platform | undefined): boolean {
  if (!p) return false;
  return (
    asked.os === p.os &&
    asked.architecture === p.architecture &&
    (asked.variant === undefined || asked.variant === p.variant)
  );
}

/** Only `os`, `architecture` and `variant` of an index entry's platform: what the statement records. */
export function recordedPlatform(p: { os: string; architecture: string; variant?: string | undefined }): Platform {
  return p.variant
    ? { os: p.os, architecture: p.architecture, variant: p.variant }
    : { os: p.os, architecture: p.architecture };
}
