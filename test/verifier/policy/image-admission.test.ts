/**
 * The policy's container image rules over real statements' artifacts (parsed with the statement schema): repository
 * globs, platform globs (every platform carried must match), `maxSize` over every blob the image needs (carried or
 * held), and `types` (a rule without types admits VM images only); each refusal is E_NOT_ALLOWED naming the rule.
 */
import { describe, expect, it } from 'vitest';
import { EcluseError } from '../../../sneakernet/errors.js';
import { ociImageArtifactSchema, type OciImageArtifact } from '../../../sneakernet/statement.js';
import { decideRule } from '../../../verifier/policy/admission.js';
import { ruleSchema, type Policy } from '../../../verifier/policy/schema.js';
import type { ActivePolicy } from '../../../verifier/policy/store.js';
import { buildImage } from '../../helpers/oci-image.js';

const image = buildImage({
  platforms: [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ],
  layerSize: 1000,
});
const total = image.blobs.reduce((n, b) => n + b.size, 0);
const carriedTop = image.top.size;

/** An oci-image artifact carrying only its top manifest (the rest held): size is what it carries. */
const artifact: OciImageArtifact = ociImageArtifactSchema.parse({
  name: 'acme-app',
  version: '1.4',
  type: 'oci-image',
  size: carriedTop,
  sha256: 'a'.repeat(64),
  sha512: 'b'.repeat(128),
  properties: {},
  provenance: { vendor: 'acme', source: 'docker://vendor.example/acme/app:1.4', addedAt: '2026-01-01T00:00:00Z' },
  image: {
    repository: 'acme/app',
    tag: '1.4',
    digest: image.top.digest,
    mediaType: image.top.mediaType,
    platforms: image.platforms,
    blobs: image.blobs.map((b, i) => ({ digest: b.digest, size: b.size, mediaType: b.mediaType, carried: i === 0 })),
  },
});

function policyOf(rule: Record<string, unknown>): ActivePolicy {
  const policy: Policy = { version: 1, rules: [ruleSchema.parse({ name: 'r', artifacts: ['*'], ...rule })] };
  return { policy, digest: 'd'.repeat(64), source: 'applied' };
}

function refusal(rule: Record<string, unknown>): string {
  try {
    decideRule(policyOf(rule), artifact, ['alice'], 1);
  } catch (e) {
    expect(e).toBeInstanceOf(EcluseError);
    expect((e as EcluseError).code).toBe('E_NOT_ALLOWED');
    return (e as EcluseError).message;
  }
  throw new Error('admitted');
}

describe('policy rules for container images', () => {
  it('admits what every bound allows', () => {
    const rule = decideRule(
      policyOf({ types: ['oci-image'], repositories: ['acme/*'], platforms: ['linux/*'], maxSize: total }),
      artifact,
      ['alice'],
      1,
    );
    expect(rule.name).toBe('r');
  });

  it('a rule without types admits VM images only', () => {
    expect(refusal({})).toBe('acme-app 1.4 is not allowed: type oci-image is not admitted (policy rule r)');
  });

  it('refuses a repository no glob matches', () => {
    expect(refusal({ types: ['oci-image'], repositories: ['vendor/*', 'library/debian'] })).toBe(
      'acme-app 1.4 is not allowed: repository acme/app is not one of vendor/*, library/debian (policy rule r)',
    );
  });

  it('refuses a platform no glob matches, naming it', () => {
    expect(refusal({ types: ['oci-image'], platforms: ['linux/amd64', 'linux/arm64/v7'] })).toBe(
      'acme-app 1.4 is not allowed: platform linux/arm64/v8 is not one of linux/amd64, linux/arm64/v7 (policy rule r)',
    );
    expect(refusal({ types: ['oci-image'], platforms: ['linux/arm*'] })).toBe(
      'acme-app 1.4 is not allowed: platform linux/amd64 is not one of linux/arm* (policy rule r)',
    );
  });

  it('a platform glob without a variant matches any variant', () => {
    expect(
      decideRule(policyOf({ types: ['oci-image'], platforms: ['linux/amd64', 'linux/arm64'] }), artifact, [], 0).name,
    ).toBe('r');
  });

  it('bounds the whole image (every blob, carried or held), not the bytes it carries', () => {
    expect(total).toBeGreaterThan(carriedTop);
    expect(refusal({ types: ['oci-image'], maxSize: total - 1 })).toBe(
      `acme-app 1.4 is not allowed: ${total} bytes is over the ${total - 1} allowed (policy rule r)`,
    );
  });
});
