/**
 * The strict, bounded parsers of OCI manifests, indexes and configs (sneakernet/oci/manifest.ts): one test per way a
 * document is wrong, each refused with E_IMAGE_MANIFEST, and the spellings écluse reads (OCI and Docker schema 2).
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../../sneakernet/limits.js';
import { parseImageConfig, parseImageDocument } from '../../../sneakernet/oci/manifest.js';
import { DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST } from '../../../sneakernet/oci/media-types.js';
import { expectRefusal } from '../fixtures.js';
import { buildImage } from './image-fixtures.js';

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const D = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D(1), size: 100 };
const layerOf = (n: number) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D(n), size: 10 });
const manifest = (over: Record<string, unknown> = {}) => ({
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  config,
  layers: [layerOf(2)],
  ...over,
});
const entry = (n: number, platform: unknown = { os: 'linux', architecture: 'amd64' }) => ({
  mediaType: OCI_MANIFEST,
  digest: D(n),
  size: 500,
  platform,
});
const index = (manifests: unknown[]) => ({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
const refuse = (bytes: Buffer, type: string, ...inMessage: string[]) =>
  expectRefusal(() => parseImageDocument(bytes, type, 'the manifest'), 'E_IMAGE_MANIFEST', ...inMessage);

describe('parseImageDocument reads', () => {
  it('the OCI and Docker documents of a built image, with their platforms', () => {
    for (const flavour of ['oci', 'docker'] as const) {
      const img = buildImage({ flavour, platforms: ['linux/amd64', 'linux/arm/v7'] });
      const top = parseImageDocument(img.top.bytes, img.top.mediaType, 'the index');
      expect(top.kind).toBe('index');
      if (top.kind !== 'index') continue;
      expect(top.manifests.map((m) => m.platform)).toEqual([
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm', variant: 'v7' },
      ]);
      const child = top.manifests[1];
      const m = parseImageDocument(img.blobs.get(child?.digest ?? '') as Buffer, child?.mediaType ?? '', 'child');
      expect(m.kind === 'manifest' && m.layers.length).toBe(2);
    }
  });

  it('a manifest without a mediaType member (optional in OCI), ignoring unknown members as the OCI spec asks', () => {
    const { mediaType: _m, ...bare } = manifest({ futureMember: { anything: [1, 2] } });
    const m = parseImageDocument(json(bare), OCI_MANIFEST, 'the manifest');
    expect(m).toEqual({ kind: 'manifest', mediaType: OCI_MANIFEST, config, layers: [layerOf(2)] });
  });
});

describe('parseImageDocument refuses (E_IMAGE_MANIFEST)', () => {
  it('an unknown media type for the document', async () => {
    await refuse(json(manifest()), 'application/vnd.example.thing+json', 'not an image manifest or index');
  });

  it('a document declaring another media type than the one it was given as', async () => {
    await refuse(json(manifest()), DOCKER_MANIFEST, `says it is "${OCI_MANIFEST}"`);
  });

  it('an oversized manifest (over LIMITS.imageManifestBytes)', async () => {
    const big = json(manifest({ annotations: { pad: 'x'.repeat(100) } }));
    const padded = Buffer.concat([big, Buffer.alloc(LIMITS.imageManifestBytes + 1 - big.length, 0x20)]);
    await refuse(padded, OCI_MANIFEST, `more than the ${LIMITS.imageManifestBytes} allowed`);
    // exactly at the bound is read
    const exact = Buffer.concat([big, Buffer.alloc(LIMITS.imageManifestBytes - big.length, 0x20)]);
    expect(parseImageDocument(exact, OCI_MANIFEST, 'm').kind).toBe('manifest');
  });

  it('a manifest nested deeper than LIMITS.imageJsonDepth', async () => {
    let deep: unknown = 'x';
    for (let i = 0; i < LIMITS.imageJsonDepth; i++) deep = [deep];
    await refuse(json(manifest({ extra: deep })), OCI_MANIFEST, `nests deeper than ${LIMITS.imageJsonDepth} levels`);
  });

  it('an index with too many entries (over LIMITS.imageIndexEntries)', async () => {
    const many = Array.from({ length: LIMITS.imageIndexEntries + 1 }, (_, i) => entry(i + 10));
    await refuse(json(index(many)), OCI_INDEX, 'manifests');
    expect(parseImageDocument(json(index(many.slice(1))), OCI_INDEX, 'i').kind).toBe('index');
  });

  it('a manifest with too many layers (over LIMITS.imageLayers)', async () => {
    const layers = Array.from({ length: LIMITS.imageLayers + 1 }, (_, i) => layerOf(i + 10));
    await refuse(json(manifest({ layers })), OCI_MANIFEST, 'layers');
  });

  it('a layer, config or index entry of an unknown media type', async () => {
    await refuse(
      json(manifest({ layers: [{ ...layerOf(3), mediaType: 'application/x-shellscript' }] })),
      OCI_MANIFEST,
      'layer 0',
      'application/x-shellscript',
    );
    await refuse(
      json(manifest({ config: { ...config, mediaType: 'application/vnd.cncf.helm.config.v1+json' } })),
      OCI_MANIFEST,
      'not an image config',
    );
    await refuse(json(index([{ ...entry(4), mediaType: 'text/plain' }])), OCI_INDEX, 'not an image manifest');
  });

  it('a nested index, a foreign layer and a non-sha256 digest', async () => {
    await refuse(json(index([{ ...entry(4), mediaType: OCI_INDEX }])), OCI_INDEX, 'nested indexes');
    await refuse(json(manifest({ layers: [{ ...layerOf(3), urls: ['http://x/l'] }] })), OCI_MANIFEST, 'foreign layer');
    await refuse(
      json(manifest({ layers: [{ ...layerOf(3), digest: `sha512:${'a'.repeat(128)}` }] })),
      OCI_MANIFEST,
      'sha256',
    );
  });

  it('malformed documents: not JSON, not UTF-8, wrong schemaVersion, a size that is not a count', async () => {
    await refuse(Buffer.from('{"schemaVersion":'), OCI_MANIFEST, 'not valid JSON');
    await refuse(Buffer.from([0x7b, 0xff, 0x7d]), OCI_MANIFEST, 'not valid UTF-8');
    await refuse(json(manifest({ schemaVersion: 1 })), OCI_MANIFEST, 'schemaVersion');
    await refuse(json(manifest({ layers: [{ ...layerOf(3), size: -1 }] })), OCI_MANIFEST, 'layers.0.size');
  });
});

describe('parseImageConfig', () => {
  it('reads the platform of a config', () => {
    expect(parseImageConfig(json({ os: 'linux', architecture: 'arm64', variant: 'v8', history: [] }), 'c')).toEqual({
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
    });
  });

  it('refuses an oversized config, a config that is not an object, a nested one', async () => {
    const pad = Buffer.alloc(LIMITS.imageConfigBytes + 1, 0x20);
    await expectRefusal(() => parseImageConfig(pad, 'the config'), 'E_IMAGE_MANIFEST', 'more than');
    await expectRefusal(() => parseImageConfig(json([1]), 'the config'), 'E_IMAGE_MANIFEST', 'not a JSON object');
    let deep: unknown = 1;
    for (let i = 0; i < LIMITS.imageJsonDepth; i++) deep = { d: deep };
    await expectRefusal(() => parseImageConfig(json({ deep }), 'the config'), 'E_IMAGE_MANIFEST', 'nests deeper');
  });
});
