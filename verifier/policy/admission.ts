/**
 * Admission of a verified statement's artifacts: the policy rule that decides for each (E_NOT_ALLOWED naming the rule
 * and the reason), and the version order against what is installed (E_ROLLBACK). Runs before any volume byte is read,
 * and again inside the promotion transaction.
 */
import picomatch from 'picomatch';
import { EcluseError } from '../../sneakernet/errors.js';
import type { Artifact, Statement } from '../../sneakernet/statement.js';
import { parseByteSize } from '../../sneakernet/volume-plan.js';
import type { Db } from '../db.js';
import type { ActivePolicy } from './store.js';
import type { PolicyRule } from './schema.js';
import { compareVersions } from './version-order.js';
import { subjectName } from '../../sneakernet/subject.js';

export interface Placement {
  artifact: string;
  rule: string;
  visibility: PolicyRule['visibility'];
}

const matches = (globs: string[], value: string) => globs.some((g) => picomatch.isMatch(value, g, { dot: true }));

function refuse(a: Artifact, rule: string, why: string): EcluseError {
  return new EcluseError('E_NOT_ALLOWED', `${a.name} ${a.version} is not allowed: ${why} (policy rule ${rule})`, {
    check: 'policy',
    artifact: subjectName(a),
    rule,
  });
}

export function decideRule(active: ActivePolicy, a: Artifact, signers: string[], threshold: number): PolicyRule {
  const vendor = a.provenance.vendor ?? '';
  const rule = active.policy.rules.find(
    (r) => matches(r.artifacts, a.name) && (vendor === '' ? r.vendors.includes('*') : matches(r.vendors, vendor)),
  );
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
  if (rule.diskFormats && !rule.diskFormats.includes(a.diskFormat)) {
    throw refuse(a, rule.name, `disk format ${a.diskFormat} is not one of ${rule.diskFormats.join(', ')}`);
  }
  if (rule.maxSize !== undefined) {
    const max = typeof rule.maxSize === 'number' ? rule.maxSize : parseByteSize(rule.maxSize);
    if (a.size > max) throw refuse(a, rule.name, `${a.size} bytes is over the ${max} allowed`);
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

/** Highest version of `name` already in the store from a bundle, or null. */
function installedVersion(db: Db, name: string): string | null {
  const rows = db
    .prepare("SELECT DISTINCT artifact_version AS v FROM images WHERE origin = 'bundle' AND artifact_name = ?")
    .all(name) as Array<{ v: string | null }>;
  let best: string | null = null;
  for (const { v } of rows) if (v !== null && (best === null || compareVersions(v, best) > 0)) best = v;
  return best;
}

export function checkAdmission(
  db: Db,
  active: ActivePolicy,
  s: Statement,
  signers: string[],
  threshold: number,
): Placement[] {
  return s.predicate.artifacts.map((a) => {
    const rule = decideRule(active, a, signers, threshold);
    const installed = installedVersion(db, a.name);
    if (installed !== null) {
      const order = compareVersions(a.version, installed);
      if (order === 0 || (order < 0 && !rule.allowDowngrade)) {
        throw new EcluseError(
          'E_ROLLBACK',
          order === 0
            ? `${a.name} ${a.version} is already installed`
            : `${a.name} ${a.version} is older than ${installed}, already installed (policy rule ${rule.name} does not allow a downgrade)`,
          { check: 'rollback', artifact: subjectName(a) },
        );
      }
    }
    return { artifact: subjectName(a), rule: rule.name, visibility: rule.visibility };
  });
}
