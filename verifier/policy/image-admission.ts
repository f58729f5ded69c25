/**
 * What the policy says of an oci-image once its rule is chosen (admission.ts): the repository globs, the platform
 * globs (every platform carried must match one), and the version order per repository: an image is refused when its
 * repository already holds this version or a newer one (E_ROLLBACK), unless the rule allows a downgrade; the very same
 * image (repository, version and digest) is "already here", admitted and not promoted twice.
 */
import picomatch from 'picomatch';
import type { OciImageArtifact } from '../../sneakernet/statement.js';
import { platformKey, type Platform } from '../../sneakernet/oci/platform.js';
import type { Db } from '../db.js';
import { imagesOfRepository } from '../registry/images.js';
import type { PolicyRule } from './schema.js';
import { compareVersions } from './version-order.js';

/** Why the rule does not admit this image (repository or platform), or null when it does. */
export function imageRuleProblem(rule: PolicyRule, a: OciImageArtifact): string | null {
  const repo = a.image.repository;
  if (rule.repositories && !rule.repositories.some((g) => picomatch.isMatch(repo, g, { dot: true }))) {
    return `repository ${repo} is not one of ${rule.repositories.join(', ')}`;
  }
  if (rule.platforms) {
    const globs = rule.platforms;
    const refused = a.image.platforms.filter((p) => !globs.some((g) => platformGlobMatches(g, p))).map(platformKey);
    if (refused.length > 0) {
      return `platform${refused.length > 1 ? 's' : ''} ${refused.join(', ')} ${refused.length > 1 ? 'are' : 'is'} not one of ${globs.join(', ')}`;
    }
  }
  return null;
}

/**
 * Whether a platform glob admits a platform: `os/arch` globs match whatever the variant (as `--platform linux/arm64`
 * takes linux/arm64/v8 outside), `os/arch/variant` globs match the variant too.
 */
export function platformGlobMatches(glob: string, p: Platform): boolean {
  const key = glob.split('/').length === 2 ? `${p.os}/${p.architecture}` : platformKey(p);
  return picomatch.isMatch(key, glob);
}

/** Bytes of every blob the image needs (carried or held): what `maxSize` bounds for an oci-image. */
export function imageSize(a: OciImageArtifact): number {
  return a.image.blobs.reduce((n, b) => n + b.size, 0);
}

/** The store holds this very image: same repository, version and top digest. */
export function imageAlreadyHeld(db: Db, a: OciImageArtifact): boolean {
  return imagesOfRepository(db, a.image.repository).some((i) => i.version === a.version && i.digest === a.image.digest);
}

/** The highest version of the image's repository in the store, or null. */
export function installedImageVersion(db: Db, a: OciImageArtifact): string | null {
  let best: string | null = null;
  for (const i of imagesOfRepository(db, a.image.repository)) {
    if (best === null || compareVersions(i.version, best) > 0) best = i.version;
  }
  return best;
}
