/**
 * Reading, checking, applying and showing the policy. A policy file is YAML or JSON; what is stored and digested is
 * its normalised JSON (defaults filled in), so the digest names what is enforced, not how the file was spelled.
 * Applying a policy is audited with the old and new digests.
 */
import crypto, { createHash } from 'node:crypto';
import { readOperatorFile } from '../../sneakernet/operator-file.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { readOpenPgpKey } from '../../keys/vendor.js';
import { appendAudit } from '../audit.js';
import { getSetting, setSetting, type Db } from '../db.js';
import { DEFAULT_POLICY, policySchema, type Policy } from './schema.js';

export interface ActivePolicy {
  policy: Policy;
  /** sha256 of the normalised JSON. */
  digest: string;
  source: 'default' | 'applied';
}

const MAX_POLICY_BYTES = 1024 * 1024;

function normalise(p: Policy): string {
  return JSON.stringify(p);
}

function digestOf(p: Policy): string {
  return createHash('sha256').update(normalise(p)).digest('hex');
}

/** Parses and validates a policy file; refuses with E_INPUT naming the first problem. */
export function readPolicyFile(file: string): ActivePolicy {
  const raw = readOperatorFile(file, MAX_POLICY_BYTES);
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new EcluseError(
      'E_INPUT',
      `${file}: ${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'invalid'}`,
    );
  }
  const names = new Set<string>();
  for (const r of parsed.data.rules) {
    if (names.has(r.name)) throw new EcluseError('E_INPUT', `${file}: two rules are named ${r.name}`);
    names.add(r.name);
    (r.vendorKeys ?? []).forEach((k, i) => {
      if (!usableVendorKey(k)) {
        throw new EcluseError(
          'E_INPUT',
          `${file}: rule ${r.name}: vendorKeys.${i} is not an armored OpenPGP public key, a PEM public key or a PEM certificate`,
        );
      }
    });
  }
  return { policy: parsed.data, digest: digestOf(parsed.data), source: 'applied' };
}

/** Whether a pinned vendor key can be read as what it says it is. */
function usableVendorKey(k: string): boolean {
  try {
    if (k.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----')) readOpenPgpKey(Buffer.from(k, 'utf8'));
    else if (k.includes('-----BEGIN CERTIFICATE-----')) new crypto.X509Certificate(k);
    else crypto.createPublicKey(k);
    return true;
  } catch {
    return false;
  }
}

export function activePolicy(db: Db): ActivePolicy {
  const stored = getSetting(db, 'policy');
  if (!stored) return { policy: DEFAULT_POLICY, digest: digestOf(DEFAULT_POLICY), source: 'default' };
  const policy = policySchema.parse(JSON.parse(stored));
  return { policy, digest: digestOf(policy), source: 'applied' };
}

export function applyPolicy(db: Db, next: ActivePolicy, file: string): { previous: string; current: string } {
  const before = activePolicy(db);
  db.transaction(() => {
    setSetting(db, 'policy', normalise(next.policy));
    appendAudit(db, {
      kind: 'policy.applied',
      outcome: 'info',
      message: `policy ${next.digest.slice(0, 12)} applied from ${file} (was ${before.digest.slice(0, 12)}, ${before.source})`,
      details: { previous: before.digest, current: next.digest, rules: next.policy.rules.map((r) => r.name) },
    });
  })();
  return { previous: before.digest, current: next.digest };
}
