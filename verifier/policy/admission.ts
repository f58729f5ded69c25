/**
 * Admission of a verified statement's artifacts: the policy rule that decides for each (E_NOT_ALLOWED naming the rule
 * and the reason), and the version order against what is installed (E_ROLLBACK). Runs before any volume byte is read,
 * and again inside the promotion transaction.
 */
import picomatch from 'picomatch';
import { EcluseError } from '../../sneakernet/errors.js';
import { subjectName, type Artifact, type Statement } from '../../sneakernet/statement.js';
import { parseByteSize } from '../../sneakernet/volume-plan.js';
import type { Db } from '../db.js';
import { bundledVersions, holdsArtifact } from '../image-catalog.js';
import type { ActivePolicy } from './store.js';
import type { PolicyRule } from './schema.js';
import { compareVersions } from './version-order.js';
import { imageAlreadyHeld, imageRuleProblem, imageSize, installedImageVersion } from './image-admission.js';
import { retiredVersions } from '../retired-images.js';
import { packageArchProblem, packageRollbackProblem } from '../self-update/admission.js';

export interface Placement {
  /** `name@version` (subjectName). */
  artifact: string;
  rule: string;
  visibility: PolicyRule['visibility'];
  /** The store already holds this artifact, same version and digest: admitted, not promoted twice. */
  alreadyHere?: boolean;
}

const matches = (globs: string[], value: string) => globs.some((g) => picomatch.isMatch(value, g, { dot: true }));
/** Vendor ids are matched without regard to case: `Debian`, `debian` and `DEBIAN` are one vendor. */
const matchesVendor = (globs: string[], vendor: string) =>
  globs.some((g) => picomatch.isMatch(vendor, g, { dot: true, nocase: true }));

function refuse(a: Artifact, rule: string, why: string): EcluseError {
  return new EcluseError('E_NOT_ALLOWED', `${a.name} ${a.version} is not allowed: ${why} (policy rule ${rule})`, {
    check: 'policy',
    artifact: subjectName(a),
    rule,
  });
}

/** The first rule whose globs match an artifact of this name and vendor (none: undefined). */
export function ruleFor(active: ActivePolicy, name: string, vendor: string | null): PolicyRule | undefined {
  const v = vendor ?? '';
  return active.policy.rules.find(
    (r) => matches(r.artifacts, name) && (v === '' ? r.vendors.includes('*') : matchesVendor(r.vendors, v)),
  );
}

export function decideRule(active: ActivePolicy, a: Artifact, signers: string[], threshold: number): PolicyRule {
  const vendor = a.provenance.vendor ?? '';
  const rule = ruleFor(active, a.name, vendor);
  if (!rule) {
    throw new EcluseError(
      'E_NOT_ALLOWED',
      `${a.name} ${a.version} is not allowed: no policy rule admits it${vendor ? ` from vendor ${vendor}` : ''}`,
      {
        check: 'policy',
        artifact: subjectName(a),
      },
    );
  }
  if (!rule.types.includes(a.type)) throw refuse(a, rule.name, `type ${a.type} is not admitted`);
  if (a.type === 'vm-image' && rule.diskFormats && !rule.diskFormats.includes(a.diskFormat)) {
    throw refuse(a, rule.name, `disk format ${a.diskFormat} is not one of ${rule.diskFormats.join(', ')}`);
  }
  if (a.type === 'oci-image') {
    const problem = imageRuleProblem(rule, a);
    if (problem) throw refuse(a, rule.name, problem);
  }
  if (a.type === 'ecluse-package') {
    const problem = packageArchProblem(a);
    if (problem) throw refuse(a, rule.name, problem);
  }
  if (rule.maxSize !== undefined) {
    const max = typeof rule.maxSize === 'number' ? rule.maxSize : parseByteSize(rule.maxSize);
    const size = a.type === 'oci-image' ? imageSize(a) : a.size;
    if (size > max) throw refuse(a, rule.name, `${size} bytes is over the ${max} allowed`);
  }
  if (rule.signers) {
    const allowed = signers.filter((s) => rule.signers?.includes(s));
    if (allowed.length < threshold) {
      throw refuse(
        a,
        rule.name,
        `${threshold} of its signers must be among ${rule.signers.join(', ')}; the bundle has ${allowed.length} (${signers.join(', ')})`,
      );
    }
  }
  return rule;
}

/**
 * Highest version of `name` the store holds from a bundle, or held and retired since (a retired version is not admitted
 * again as if it were new), or null; `retired` says which.
 */
function installedVersion(db: Db, name: string): { version: string; retired: boolean } | null {
  let best: { version: string; retired: boolean } | null = null;
  const consider = (v: string, retired: boolean) => {
    if (best === null || compareVersions(v, best.version) > 0) best = { version: v, retired };
  };
  for (const v of bundledVersions(db, name)) consider(v, false);
  for (const v of retiredVersions(db, name)) consider(v, true);
  return best;
}

/** Whether the store already holds this very artifact (same name, version and SHA-256) from a bundle. */
function alreadyHeld(db: Db, a: Artifact): boolean {
  return holdsArtifact(db, a);
}

/** An artifact a refusal is about, as the receipt carries it (`refused[].artifacts`). */
export interface RefusedArtifact {
  name: string;
  version: string;
  sha256: string;
  /** The policy rule that decided (null: no rule matched). */
  rule: string | null;
}

function refusedOf(a: Artifact, rule: string | null): RefusedArtifact {
  return { name: a.name, version: a.version, sha256: a.sha256, rule };
}

/** One error naming every refused artifact: the first one's line, then how many more (all in `context.artifacts`). */
function refusal(code: 'E_NOT_ALLOWED' | 'E_ROLLBACK', found: Array<{ err: EcluseError; artifact: RefusedArtifact }>) {
  const first = found[0] as (typeof found)[number];
  const more =
    found.length > 1
      ? `; and ${found
          .slice(1)
          .map((f) => `${f.artifact.name} ${f.artifact.version}`)
          .join(', ')} too (${found.length} artifacts refused)`
      : '';
  return new EcluseError(code, `${first.err.message}${more}`, {
    ...first.err.context,
    artifacts: found.map((f) => f.artifact),
  });
}

/**
 * Steps 5h and 5i: every artifact is judged (not only until the first refusal), so the refusal names them all. An
 * artifact the store already holds with the same version and digest is "already here": admitted, not promoted again.
 */
export function checkAdmission(
  db: Db,
  active: ActivePolicy,
  s: Statement,
  signers: string[],
  threshold: number,
): Placement[] {
  const notAllowed: Array<{ err: EcluseError; artifact: RefusedArtifact }> = [];
  const rollbacks: Array<{ err: EcluseError; artifact: RefusedArtifact }> = [];
  const placements: Placement[] = [];
  for (const a of s.predicate.artifacts) {
    let rule: PolicyRule;
    try {
      rule = decideRule(active, a, signers, threshold);
    } catch (e) {
      if (!(e instanceof EcluseError) || e.code !== 'E_NOT_ALLOWED') throw e;
      notAllowed.push({ err: e, artifact: refusedOf(a, typeof e.context.rule === 'string' ? e.context.rule : null) });
      continue;
    }
    const placement: Placement = { artifact: subjectName(a), rule: rule.name, visibility: rule.visibility };
    // écluse's own package: never "already here", never a downgrade; it goes to the installer, not the store.
    if (a.type === 'ecluse-package') {
      const problem = packageRollbackProblem(db, a);
      if (problem) {
        rollbacks.push({
          err: new EcluseError('E_ROLLBACK', problem, {
            check: 'rollback',
            artifact: subjectName(a),
            rule: rule.name,
          }),
          artifact: refusedOf(a, rule.name),
        });
      } else placements.push(placement);
      continue;
    }
    if (a.type === 'oci-image' ? imageAlreadyHeld(db, a) : alreadyHeld(db, a)) {
      placements.push({ ...placement, alreadyHere: true });
      continue;
    }
    // Container images: the version order is per repository (two names may serve one repository).
    const imageVersion = a.type === 'oci-image' ? installedImageVersion(db, a) : null;
    const held =
      a.type === 'oci-image'
        ? imageVersion === null
          ? null
          : { version: imageVersion, retired: false }
        : installedVersion(db, a.name);
    const of = a.type === 'oci-image' ? ` in repository ${a.image.repository}` : '';
    if (held !== null) {
      const installed = held.version;
      const order = compareVersions(a.version, installed);
      const was = held.retired ? 'installed and retired here' : 'already installed';
      if (order === 0 || (order < 0 && !rule.allowDowngrade)) {
        rollbacks.push({
          err: new EcluseError(
            'E_ROLLBACK',
            order === 0
              ? `${a.name} ${a.version} is ${was}${of}`
              : `${a.name} ${a.version} is older than ${installed}, ${was}${of} (policy rule ${rule.name} does not allow a downgrade)`,
            { check: 'rollback', artifact: subjectName(a), rule: rule.name },
          ),
          artifact: refusedOf(a, rule.name),
        });
        continue;
      }
    }
    placements.push(placement);
  }
  if (notAllowed.length > 0) throw refusal('E_NOT_ALLOWED', notAllowed);
  if (rollbacks.length > 0) throw refusal('E_ROLLBACK', rollbacks);
  return placements;
}
