/**
 * The oci-image artifact in the statement (FORMAT.md 4.10, 4.3 rules 11–13): the schema and the consistency rules a
 * reader checks from the statement alone. One test per way it can be wrong, each E_FORMAT; vm-image unchanged.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../../sneakernet/limits.js';
import { imageContents } from '../../../sneakernet/oci/contents.js';
import {
  canonicalVolumeSize,
  encodeStatement,
  entryPath,
  parseStatement,
  type OciImageArtifact,
  type Statement,
} from '../../../sneakernet/statement.js';
import { clone, expectRefusal, makeArtifact, makeStatement, sha256, sha512 } from '../fixtures.js';
import { buildImage, type TestImage } from './image-fixtures.js';

/** An oci-image artifact for `img`, carrying the blobs `carried` says (default all), with its true stream digests. */
function ociArtifact(img: TestImage, i: number, carried: (digest: string) => boolean = () => true): OciImageArtifact {
  const c = imageContents(
    img.top,
    (e) => img.blobs.get(e.digest),
    () => true,
    'x',
  );
  const blobs = c.blobs.map((b, k) => ({ ...b, carried: k === 0 || carried(b.digest) }));
  const stream = Buffer.concat(blobs.filter((b) => b.carried).map((b) => img.blobs.get(b.digest) as Buffer));
  return {
    name: `app-${i}`,
    version: `1.${i}`,
    type: 'oci-image',
    size: stream.length,
    sha256: sha256(stream),
    sha512: sha512(stream),
    properties: {},
    provenance: {
      vendor: 'acme',
      source: 'docker://vendor.example:5000/acme/app:1.4',
      addedAt: '2025-01-01T00:00:00Z',
    },
    image: {
      repository: 'acme/app',
      tag: `1.${i}`,
      digest: img.top.digest,
      mediaType: img.top.mediaType,
      platforms: c.platforms,
      blobs,
    },
  };
}

/** A statement over `artifacts`, each whole in one entry of one volume. */
function statementOf(artifacts: Statement['predicate']['artifacts']): Statement {
  const entries = artifacts.map((a, i) => ({ path: entryPath(a.sha256, 1, 1), artifact: i, offset: 0, size: a.size }));
  return makeStatement(artifacts, [
    { name: 'vol-0001.tar', size: canonicalVolumeSize(entries), sha256: sha256('vol'), entries },
  ]);
}

/** Re-derives subjects, sizes and the volume from the artifacts after a mutation (so only the rule under test fails). */
function resealed(s: Statement): Buffer {
  return encodeStatement(statementOf(s.predicate.artifacts));
}

const refuse = (bytes: Buffer, ...inMessage: string[]) =>
  expectRefusal(() => parseStatement(bytes), 'E_FORMAT', ...inMessage);
const img = buildImage({ platforms: ['linux/amd64', 'linux/arm64'] });
const oci = (s: Statement, i = 0) => s.predicate.artifacts[i] as OciImageArtifact;

describe('an oci-image artifact in the statement', () => {
  it('is accepted beside a vm-image, and vm-image artifacts read exactly as before', () => {
    const s = statementOf([makeArtifact(0, Buffer.alloc(10, 1)), ociArtifact(img, 1)]);
    expect(parseStatement(encodeStatement(s))).toEqual(s);
  });

  it('may leave out blobs the site holds, carrying only the rest (its size is theirs)', () => {
    const layers = new Set(img.platforms.get('linux/amd64')?.layers.map((l) => l.digest));
    const a = ociArtifact(img, 1, (d) => !layers.has(d));
    expect(a.image.blobs.filter((b) => !b.carried)).toHaveLength(2);
    expect(parseStatement(encodeStatement(statementOf([a])))).toBeTruthy();
  });

  it('a non-carried blob may be carried by an earlier artifact of the bundle', () => {
    const v2 = buildImage({
      platforms: ['linux/amd64'],
      baseLayers: [img.blobs.get(img.platforms.get('linux/amd64')?.layers[0]?.digest ?? '') as Buffer],
    });
    const shared = img.platforms.get('linux/amd64')?.layers[0]?.digest ?? '';
    const s = statementOf([ociArtifact(img, 1), ociArtifact(v2, 2, (d) => d !== shared)]);
    expect(parseStatement(encodeStatement(s)).predicate.artifacts).toHaveLength(2);
  });

  it('E_FORMAT: a blob listed twice', async () => {
    const s = statementOf([ociArtifact(img, 1)]);
    oci(s).image.blobs.push({
      ...(oci(s).image.blobs[2] as OciImageArtifact['image']['blobs'][number]),
      carried: false,
    });
    await refuse(resealed(s), 'lists the blob', 'twice');
  });

  it('E_FORMAT: carried sizes that do not add up to the artifact size', async () => {
    const s = clone(statementOf([ociArtifact(img, 1)]));
    (oci(s).image.blobs[3] as { size: number }).size += 1;
    await refuse(encodeStatement(s), 'add up to', `not its size ${oci(s).size}`);
  });

  it('E_FORMAT: a top manifest not carried, or not listed first', async () => {
    const s = statementOf([ociArtifact(img, 1)]);
    (oci(s).image.blobs[0] as { carried: boolean }).carried = false;
    await refuse(resealed(s), 'does not carry its top manifest');
    const t = statementOf([ociArtifact(img, 1)]);
    oci(t).image.blobs.reverse();
    await refuse(resealed(t), 'is not its top manifest');
  });

  it('E_FORMAT: a blob carried twice in one bundle, or needed before the artifact that carries it', async () => {
    const v2 = buildImage({
      platforms: ['linux/amd64'],
      baseLayers: [img.blobs.get(img.platforms.get('linux/amd64')?.layers[0]?.digest ?? '') as Buffer],
    });
    const shared = img.platforms.get('linux/amd64')?.layers[0]?.digest ?? '';
    await refuse(encodeStatement(statementOf([ociArtifact(img, 1), ociArtifact(v2, 2)])), 'carried twice');
    await refuse(
      encodeStatement(statementOf([ociArtifact(v2, 2, (d) => d !== shared), ociArtifact(img, 1)])),
      'a later artifact carries it',
    );
  });

  it('E_FORMAT: platforms on a single manifest, a platform twice, too many blobs or platforms', async () => {
    const single = buildImage({ platforms: ['linux/amd64'], single: true });
    const s = statementOf([ociArtifact(single, 1)]);
    oci(s).image.platforms.push({ os: 'linux', architecture: 'amd64' });
    await refuse(resealed(s), 'single manifest but lists platforms');
    const t = statementOf([ociArtifact(img, 1)]);
    oci(t).image.platforms.push({ os: 'linux', architecture: 'amd64' });
    await refuse(resealed(t), 'platform linux/amd64 twice');
    const u = statementOf([ociArtifact(img, 1)]);
    oci(u).image.platforms = Array.from({ length: LIMITS.imagePlatforms + 1 }, (_, i) => ({
      os: 'linux',
      architecture: `a${i}`,
    }));
    await refuse(resealed(u), 'image.platforms');
    const v = statementOf([ociArtifact(img, 1)]);
    const filler = (i: number) => ({
      digest: `sha256:${(i + 1).toString(16).padStart(64, '0')}`,
      size: 0,
      mediaType: 'application/vnd.oci.image.layer.v1.tar',
      carried: false,
    });
    oci(v).image.blobs.push(...Array.from({ length: LIMITS.imageBlobs }, (_, i) => filler(i)));
    await refuse(resealed(v), 'image.blobs');
  });

  it('E_FORMAT: members a vm-image has (delta, md5, diskFormat), an unknown media type, a bad repository or tag', async () => {
    for (const [member, value] of [
      ['md5', 'a'.repeat(32)],
      ['diskFormat', 'qcow2'],
      [
        'delta',
        { base: { name: 'x', version: '1', size: 1, sha256: 'a'.repeat(64) }, ops: [{ from: 'bundle', size: 1 }] },
      ],
    ] as const) {
      const s = statementOf([ociArtifact(img, 1)]) as unknown as {
        predicate: { artifacts: Array<Record<string, unknown>> };
      };
      (s.predicate.artifacts[0] as Record<string, unknown>)[member] = value;
      await refuse(encodeStatement(s as unknown as Statement), 'malformed');
    }
    const m = statementOf([ociArtifact(img, 1)]);
    (oci(m).image as { mediaType: string }).mediaType = 'application/vnd.example+json';
    await refuse(resealed(m), 'image.mediaType');
    for (const [key, value] of [
      ['repository', 'Acme/App'],
      ['repository', 'vendor.example:5000/acme/app'],
      ['tag', '.hidden'],
      ['digest', `sha512:${'a'.repeat(128)}`],
    ] as const) {
      const s = statementOf([ociArtifact(img, 1)]);
      (oci(s).image as Record<string, unknown>)[key] = value;
      await refuse(resealed(s), `image.${key}`);
    }
  });

  it('E_FORMAT: an unknown artifact type (a reader refuses what it cannot read)', async () => {
    const s = clone(statementOf([makeArtifact(0, Buffer.alloc(10, 1))])) as unknown as {
      predicate: { artifacts: Array<{ type: string }> };
    };
    (s.predicate.artifacts[0] as { type: string }).type = 'helm-chart';
    await refuse(encodeStatement(s as unknown as Statement), 'type');
  });
});
