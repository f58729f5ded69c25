/**
 * Retiring images from the store (`ecluse image retire NAME@VERSION`, `ecluse image prune`, the policy's
 * `keepNewest` after each import): the image leaves the catalog, the Glance API and the web view, the next receipt
 * lists it as retired (the export station then never bases a delta on it), and its bytes are deleted.
 *
 * Order, crash-safe: one transaction checks, records the retirement, removes the catalog rows and audits
 * `image.retired`; only after the commit are the files deleted. A crash in between leaves an orphan file no client
 * can see, which `ecluse store check --repair` removes; never a catalog row without its file.
 *
 * Refused (E_IMAGE_IN_USE): a protected image, and an image the export station may still send a delta against as far
 * as this station can know it (accepted-state.ts `deltaBasesNeeded`); `force` retires the latter anyway, and the
 * bundle that needed it is then refused with E_DELTA_BASE and replaced (docs/FORMAT.md 10.2).
 */
import fs from 'node:fs';
import path from 'node:path';
import { syncDir } from '../sneakernet/durable.js';
import { asEcluseError, EcluseError } from '../sneakernet/errors.js';
import { subjectName } from '../sneakernet/subject.js';
import { deltaBasesNeeded, type DeltaBaseNeed } from './accepted-state.js';
import { appendAudit } from './audit.js';
import { glanceTime } from './db.js';
import { ruleFor } from './policy/admission.js';
import { activePolicy } from './policy/store.js';
import { compareVersions } from './policy/version-order.js';
import {
  bundleImageNames,
  bundleImagesOf,
  deleteImageRow,
  recordRetired,
  retiredImages,
  showImage,
  type BundleImage,
  type RetirementReason,
} from './retired-images.js';
import type { Db } from './db.js';

/** What retirement works on: the catalog, the site id (for the commands it names) and the store's image folder. */
export interface Store {
  db: Db;
  siteId: string;
  home: { images: string };
}

export interface RetiredImage {
  id: string;
  size: number;
  bundleId: string | null;
  /** False when the file could not be deleted (left for `ecluse store check --repair`). */
  fileDeleted: boolean;
}

export interface Retirement {
  name: string;
  version: string;
  sha256: string;
  /** Bytes freed in the store. */
  bytes: number;
  images: RetiredImage[];
  reason: RetirementReason;
  /** `--force`: the delta-base needs overridden (their bundles will be refused with E_DELTA_BASE and need replacing). */
  overridden: string[];
  /** The image of the newest version left, listed again in the Glance API (it was hidden behind the retired one). */
  shown: { id: string; version: string } | null;
  at: string;
}

/** One line per bundle that needs the image as a delta base: which bundle, and what the export station will do. */
function describeNeed(n: DeltaBaseNeed): string {
  return n.why === 'newest-accepted'
    ? `${n.artifact} in ${n.station} #${n.sequence} is a delta against it, and that station's next bundles may be too`
    : `${n.artifact} in ${n.station} #${n.sequence} (refused here: ${n.code ?? 'refused'}) is a delta against it, and its resend needs it`;
}

/** Why `images` (one name@version) may not be retired now: protected, or delta-base needs (not forced). */
function checkRetirable(site: Store, name: string, version: string, images: BundleImage[], force: boolean): string[] {
  const key = subjectName({ name, version });
  const guarded = images.find((i) => i.protected !== 0);
  if (guarded) {
    throw new EcluseError(
      'E_IMAGE_IN_USE',
      `${key} is protected (image ${guarded.id}): unprotect it first (openstack image set --unprotected ${guarded.id}), then retire it`,
      { check: 'retire-protected', artifact: key },
    );
  }
  const digests = new Set(images.map((i) => i.sha256));
  const needs = deltaBasesNeeded(site.db).filter((n) => digests.has(n.sha256));
  if (needs.length === 0) return [];
  const lines = needs.map(describeNeed);
  if (!force) {
    const first = needs[0] as DeltaBaseNeed;
    throw new EcluseError(
      'E_IMAGE_IN_USE',
      `${key} may still be needed as a delta base: ${lines.join('; ')}; import the bundles that carry those deltas first, or retire it anyway with --force (such a bundle is then refused with E_DELTA_BASE, and the export station replaces it: ecluse export --replace ${first.sequence} --site ${site.siteId} --to MEDIA)`,
      { check: 'retire-delta-base', artifact: key, needs: needs.map((n) => ({ ...n })) },
    );
  }
  return lines;
}

/** The newest version left of `name` when none is listed (all hidden), to list it again. */
function newestToShow(site: Store, name: string): BundleImage | null {
  const left = bundleImagesOf(site.db, name);
  if (left.length === 0 || left.some((i) => i.os_hidden === 0)) return null;
  return left.reduce((best, i) => (compareVersions(i.version, best.version) > 0 ? i : best));
}

/**
 * Retires every image of `name@version` that came through a bundle. Throws E_NOT_FOUND when there is none (naming a
 * retirement already made), E_IMAGE_IN_USE when it may not be retired now.
 */
export async function retireImage(
  site: Store,
  ref: { name: string; version: string },
  o: {
    force?: boolean;
    reason?: RetirementReason;
    now?: Date;
    /** Only this image of `name@version` (a Glance API delete of one image), not every one. */
    only?: string;
  } = {},
): Promise<Retirement> {
  const { name, version } = ref;
  const key = subjectName(ref);
  const reason = o.reason ?? 'operator';
  const at = glanceTime(o.now ?? new Date());
  const db = site.db;
  let files: Array<string | null> = [];
  const r = db
    .transaction((): Retirement => {
      const images = bundleImagesOf(db, name, version).filter((i) => o.only === undefined || i.id === o.only);
      if (images.length === 0) {
        const before = retiredImages(db, 1000, name).find((x) => x.version === version);
        throw new EcluseError(
          'E_NOT_FOUND',
          before
            ? `${key} was already retired on ${before.retired_at}: nothing to do`
            : `the store holds no ${key} from a bundle: see what it holds with "ecluse image list ${name}"`,
          { check: 'retire-image', artifact: key },
        );
      }
      const overridden = checkRetirable(site, name, version, images, o.force === true);
      files = images.map((i) => i.file);
      const wasListed = images.some((i) => i.os_hidden === 0);
      for (const i of images) {
        recordRetired(db, i, at, reason);
        deleteImageRow(db, i.id);
      }
      const show = wasListed ? newestToShow(site, name) : null;
      if (show) showImage(db, show.id, at);
      const sha256 = (images[0] as BundleImage).sha256;
      const bytes = images.reduce((n, i) => n + i.size, 0);
      appendAudit(db, {
        kind: 'image.retired',
        outcome: 'info',
        message: `${key} retired (${reason === 'keep-newest' ? 'the policy keeps fewer versions' : reason === 'api' ? 'deleted through the Glance API' : 'by the operator'}): image(s) ${images.map((i) => i.id).join(', ')}${overridden.length ? `; forced although ${overridden.join('; ')}` : ''}${show ? `; ${name}@${show.version} is listed again` : ''}`,
        artifact: key,
        bundleId: images[0]?.bundle_id ?? null,
        details: {
          name,
          version,
          sha256,
          bytes,
          reason,
          images: images.map((i) => i.id),
          forced: overridden.length > 0,
          overridden,
          shown: show?.id ?? null,
        },
      });
      return {
        name,
        version,
        sha256,
        bytes,
        reason,
        images: images.map((i) => ({ id: i.id, size: i.size, bundleId: i.bundle_id, fileDeleted: false })),
        overridden,
        shown: show ? { id: show.id, version: show.version } : null,
        at,
      };
    })
    .immediate();
  // The rows are gone: now the bytes (a crash before this leaves orphans that `store check --repair` removes).
  for (const [i, file] of files.entries()) {
    const image = r.images[i] as RetiredImage;
    // Store files are named by the catalog (an image id), never by anything a sender chose: no path may escape.
    if (!file || path.basename(file) !== file || file === '.' || file === '..') {
      image.fileDeleted = true;
      continue;
    }
    try {
      await fs.promises.rm(path.join(site.home.images, file), { force: true });
      image.fileDeleted = true;
    } catch {
      image.fileDeleted = false;
    }
  }
  await syncDir(site.home.images).catch(() => undefined);
  return r;
}

/** A version `keepNewest` would retire but may not now, and why. */
export interface KeptVersion {
  name: string;
  version: string;
  why: string;
}

export interface Pruning {
  retired: Retirement[];
  kept: KeptVersion[];
}

/**
 * Applies the policy's `keepNewest` to `names` (default: every name the store holds from bundles): for each name
 * whose rule sets it, the versions beyond the newest N (in version order) are retired, except those that may not be
 * now (kept, with the reason). Audits one `image.kept` event when versions had to be kept.
 */
export async function keepNewest(site: Store, names?: readonly string[], now = new Date()): Promise<Pruning> {
  const policy = activePolicy(site.db);
  const out: Pruning = { retired: [], kept: [] };
  for (const name of names ? [...new Set(names)] : bundleImageNames(site.db)) {
    const images = bundleImagesOf(site.db, name);
    const newest = images.reduce<BundleImage | null>(
      (b, i) => (b === null || compareVersions(i.version, b.version) > 0 ? i : b),
      null,
    );
    if (!newest) continue;
    const keep = ruleFor(policy, name, newest.vendor)?.keepNewest;
    if (keep === undefined) continue;
    const versions = [...new Set(images.map((i) => i.version))].sort((a, b) => compareVersions(b, a));
    for (const version of versions.slice(keep)) {
      try {
        out.retired.push(await retireImage(site, { name, version }, { reason: 'keep-newest', now }));
      } catch (e) {
        // Each retirement is one transaction: one that fails leaves the store as it was, and the others go on.
        const err = asEcluseError(e);
        out.kept.push({ name, version, why: err.code === 'E_IMAGE_IN_USE' ? err.message : err.line() });
      }
    }
  }
  if (out.kept.length > 0) {
    appendAudit(site.db, {
      kind: 'image.kept',
      outcome: 'info',
      message: `the policy keeps fewer versions, but ${out.kept.map((k) => subjectName(k)).join(', ')} stay for now: ${out.kept[0]?.why ?? ''}`,
      details: { kept: out.kept.map((k) => ({ ...k })) },
    });
  }
  return out;
}

/** A retirement as `--json` prints it (`ecluse image retire`, `image prune`, `import` after keepNewest). */
export interface RetiredJson {
  name: string;
  version: string;
  sha256: string;
  bytes: number;
  reason: RetirementReason;
  images: string[];
  /** Image files that could not be deleted (left for `ecluse store check --repair`). */
  filesLeft: string[];
  forced: boolean;
  overridden: string[];
  shown: { id: string; version: string } | null;
  at: string;
}

export function retiredJson(r: Retirement): RetiredJson {
  return {
    name: r.name,
    version: r.version,
    sha256: r.sha256,
    bytes: r.bytes,
    reason: r.reason,
    images: r.images.map((i) => i.id),
    filesLeft: r.images.filter((i) => !i.fileDeleted).map((i) => i.id),
    forced: r.overridden.length > 0,
    overridden: r.overridden,
    shown: r.shown,
    at: r.at,
  };
}
