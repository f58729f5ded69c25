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
import { revocationListSchema, type RevocationList } from '../../keys/revocation.js';

/** Where `self-update pin` writes and `self-update check` reads, unless told otherwise. */
export const DEFAULT_ANCHORS_DIR = '/etc/ecluse/self-update';
export const SITE_FILE = 'site.json';
/**
 * The newest revocation list the check (or the pin, from the station) has verified, kept by root so that evidence
 * without one cannot bring a revoked key back: the same state the station keeps in its database.
 */
export const REVOCATIONS_STATE = 'revocations.json';
const MAX_SITE_FILE = 64 * 1024;
const MAX_STATE_FILE = 8 * 1024 * 1024;

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
  /** The newest revocation list verified so far, or null. */
  revocations: RevocationList | null;
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
  return { dir, anchors, site: parsed.data, revocations: heldList(dir) };
}

function heldList(dir: string): RevocationList | null {
  const file = path.join(dir, REVOCATIONS_STATE);
  if (!fs.existsSync(file)) return null;
  const parsed = revocationListSchema.safeParse(parseBoundedJson(fs.readFileSync(file), file, MAX_STATE_FILE));
  if (!parsed.success) throw notPinned(dir, `${file} is malformed: ${parsed.error.issues[0]?.message ?? ''}`);
  return parsed.data;
}

function writeAtomically(file: string, text: string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp`);
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.chmodSync(tmp, 0o644);
  const fd = fs.openSync(tmp, 'r');
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.renameSync(tmp, file);
}

/** Keeps `list` as the newest verified revocation list of `dir` when it is newer than the one kept; true if so. */
export function rememberRevocations(dir: string, list: RevocationList): boolean {
  const held = heldList(dir);
  if (held && held.version >= list.version) return false;
  writeAtomically(path.join(dir, REVOCATIONS_STATE), `${JSON.stringify(list, null, 2)}\n`);
  return true;
}

/**
 * Copies the anchors installed in `trustDir` and the site's id and threshold into `toDir` (root-owned when root runs
 * it). The same again is a no-op (`changed: false`); other anchors or another site is E_ALREADY_INITIALIZED.
 */
export function pinAnchors(
  trustDir: string,
  toDir: string,
  site: { site: string; threshold: number },
  revocations: RevocationList | null,
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
  // The station's list in force (verified when it adopted it): kept when newer than the one root holds.
  const newerList = revocations ? rememberRevocations(toDir, revocations) : false;
  if (before) return { ...loadPinnedAnchors(toDir), changed: newerList };
  const pinned: PinnedSite = {
    formatVersion: 1,
    site: site.site,
    threshold: site.threshold,
    pinnedAt: isoSeconds(now),
  };
  writeAtomically(siteFile, `${JSON.stringify(pinned, null, 2)}\n`);
  return { dir: toDir, anchors, site: pinned, revocations: heldList(toDir), changed: true };
}
