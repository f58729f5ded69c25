/**
 * The root-owned anchors of self-update (docs/FORMAT.md 4.10): a copy, made by root, of the site's installed trust
 * anchors (`root.pem`, `trust.json`), its site id and threshold, in a folder the daemon cannot write
 * (`/etc/ecluse/self-update/`, 0755, files 0644). `ecluse self-update check` trusts only these, so a compromised
 * daemon cannot hand over a package the site's operators did not sign. Pinned once: pinning different anchors or
 * another site over them is refused (the root changes only by the rotations the evidence proves).
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { parseBoundedJson } from '../../sneakernet/bounded-json.js';
import { installTrust, loadTrustAnchors, type TrustAnchors } from '../../keys/trust.js';
import { isoSeconds } from '../../sneakernet/statement.js';
import { identifier } from '../../sneakernet/schema-parts.js';

/** Where `self-update pin` writes and `self-update check` reads, unless told otherwise. */
export const DEFAULT_ANCHORS_DIR = '/etc/ecluse/self-update';
export const SITE_FILE = 'site.json';
const MAX_SITE_FILE = 64 * 1024;

export const pinnedSiteSchema = z.strictObject({
  formatVersion: z.literal(1),
  site: identifier,
  threshold: z.number().int().min(1).max(16),
  pinnedAt: z.iso.datetime({ offset: false, precision: 0 }),
});
export type PinnedSite = z.infer<typeof pinnedSiteSchema>;

export interface PinnedAnchors {
  dir: string;
  anchors: TrustAnchors;
  site: PinnedSite;
}

function notPinned(dir: string, why: string): EcluseError {
  return new EcluseError(
    'E_UPDATE',
    `no self-update anchors are pinned in ${dir} (${why}): as root, run "ecluse self-update pin --home /var/lib/ecluse" (or "--to ${dir}")`,
    { check: 'update-anchors' },
  );
}

/** The pinned anchors in `dir`; none (or a damaged set) is E_UPDATE naming `ecluse self-update pin`. */
export function loadPinnedAnchors(dir: string): PinnedAnchors {
  const siteFile = path.join(dir, SITE_FILE);
  if (!fs.existsSync(dir)) throw notPinned(dir, 'the folder does not exist');
  if (!fs.existsSync(siteFile)) throw notPinned(dir, `${SITE_FILE} is missing`);
  const anchors = loadTrustAnchors(dir);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(siteFile);
  } catch (e) {
    throw notPinned(dir, `${siteFile} is unreadable: ${(e as Error).message}`);
  }
  const parsed = pinnedSiteSchema.safeParse(parseBoundedJson(bytes, siteFile, MAX_SITE_FILE));
  if (!parsed.success) throw notPinned(dir, `${siteFile} is malformed: ${parsed.error.issues[0]?.message ?? ''}`);
  return { dir, anchors, site: parsed.data };
}

/**
 * Copies the anchors installed in `trustDir` and the site's id and threshold into `toDir` (root-owned when root runs
 * it). The same again is a no-op (`changed: false`); other anchors or another site is E_ALREADY_INITIALIZED.
 */
export function pinAnchors(
  trustDir: string,
  toDir: string,
  site: { site: string; threshold: number },
  now = new Date(),
): PinnedAnchors & { changed: boolean } {
  const siteFile = path.join(toDir, SITE_FILE);
  const before = fs.existsSync(siteFile) ? loadPinnedAnchors(toDir) : null;
  if (before && (before.site.site !== site.site || before.site.threshold !== site.threshold)) {
    throw new EcluseError(
      'E_ALREADY_INITIALIZED',
      `${toDir} already pins site ${before.site.site} with ${before.site.threshold} signer(s) required; nothing was changed (to pin site ${site.site} with ${site.threshold}, remove ${toDir} first, as root)`,
      { check: 'update-anchors' },
    );
  }
  const anchors = installTrust(trustDir, toDir);
  if (before) return { ...before, changed: false };
  const pinned: PinnedSite = {
    formatVersion: 1,
    site: site.site,
    threshold: site.threshold,
    pinnedAt: isoSeconds(now),
  };
  const tmp = path.join(toDir, `.${SITE_FILE}.tmp`);
  fs.writeFileSync(tmp, `${JSON.stringify(pinned, null, 2)}\n`, { mode: 0o644 });
  fs.chmodSync(tmp, 0o644);
  const fd = fs.openSync(tmp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, siteFile);
  return { dir: toDir, anchors, site: pinned, changed: true };
}
