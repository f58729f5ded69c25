/**
 * OCI images built by the tests from real bytes: gzip'd tar layers, configs, manifests and indexes with their true
 * digests, kept in memory (`blobs`) and writable as an OCI image layout folder (what `skopeo copy oci:DIR:TAG` reads).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST } from '../../../sneakernet/oci/media-types.js';
import type { ImageMediaType } from '../../../sneakernet/oci/media-types.js';

export const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

export interface TestImage {
  /** Every blob of the image by digest (top, child manifests, configs, layers). */
  blobs: Map<string, Buffer>;
  top: { digest: string; mediaType: ImageMediaType; bytes: Buffer };
  /** Per platform (`os/arch[/variant]`): its manifest, config and layer descriptors. */
  platforms: Map<string, { manifest: Desc; config: Desc; layers: Desc[] }>;
}

/** A small gzip'd layer: `size` random bytes (or `content`) as one file in a tar stream (gzip of bytes is enough). */
export function layer(content: Buffer = randomBytes(2048)): Buffer {
  return zlib.gzipSync(content);
}

function put(blobs: Map<string, Buffer>, mediaType: string, bytes: Buffer): Desc {
  const digest = digestOf(bytes);
  blobs.set(digest, bytes);
  return { mediaType, digest, size: bytes.length };
}

export interface ImageSpec {
  /** `docker` builds Docker schema 2 documents, `oci` (default) OCI ones. */
  flavour?: 'oci' | 'docker';
  /** Platforms; one platform and `single: true` make a single manifest (no index). */
  platforms?: string[];
  single?: boolean;
  /** Layers shared by every platform (a base), then `extraLayers` per platform. */
  baseLayers?: Buffer[];
  extraLayers?: number;
}

/** Builds an image: per platform a config and layers (the shared base, then fresh ones), a manifest, and the index. */
export function buildImage(spec: ImageSpec = {}): TestImage {
  const docker = spec.flavour === 'docker';
  const manifestType = docker ? DOCKER_MANIFEST : OCI_MANIFEST;
  const indexType = docker ? DOCKER_MANIFEST_LIST : OCI_INDEX;
  const configType = docker
    ? 'application/vnd.docker.container.image.v1+json'
    : 'application/vnd.oci.image.config.v1+json';
  const layerType = docker
    ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
    : 'application/vnd.oci.image.layer.v1.tar+gzip';
  const blobs = new Map<string, Buffer>();
  const platforms = new Map<string, { manifest: Desc; config: Desc; layers: Desc[] }>();
  const base = spec.baseLayers ?? [layer()];
  for (const key of spec.platforms ?? ['linux/amd64', 'linux/arm64']) {
    const [os, architecture, variant] = key.split('/') as [string, string, string | undefined];
    const layers = [...base, ...Array.from({ length: spec.extraLayers ?? 1 }, () => layer())].map((b) =>
      put(blobs, layerType, b),
    );
    const config = put(
      blobs,
      configType,
      Buffer.from(
        JSON.stringify({
          architecture,
          os,
          ...(variant ? { variant } : {}),
          rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
          config: { Env: ['PATH=/usr/bin'] },
        }),
      ),
    );
    const manifestBytes = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: manifestType, config, layers }, null, 2),
    );
    const manifest = put(blobs, manifestType, manifestBytes);
    platforms.set(key, {
      manifest: { ...manifest, platform: { os, architecture, ...(variant ? { variant } : {}) } },
      config,
      layers,
    });
  }
  if (spec.single) {
    const only = [...platforms.values()][0] as { manifest: Desc };
    const bytes = blobs.get(only.manifest.digest) as Buffer;
    return {
      blobs,
      platforms,
      top: { digest: only.manifest.digest, mediaType: manifestType, bytes },
    };
  }
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: indexType,
      manifests: [...platforms.values()].map((p) => p.manifest),
    }),
  );
  const top = put(blobs, indexType, index);
  return { blobs, platforms, top: { digest: top.digest, mediaType: indexType, bytes: index } };
}

/**
 * Writes the image as an OCI image layout (`oci-layout`, `index.json` naming the top under `tag`, `blobs/sha256/…`):
 * what `skopeo copy oci:DIR:TAG` reads. Several images may share one layout (call again with another tag).
 */
export async function writeLayout(dir: string, image: TestImage, tag: string): Promise<void> {
  await fs.promises.mkdir(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  await fs.promises.writeFile(path.join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  for (const [digest, bytes] of image.blobs) {
    await fs.promises.writeFile(path.join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
  }
  const indexFile = path.join(dir, 'index.json');
  const index = fs.existsSync(indexFile)
    ? (JSON.parse(await fs.promises.readFile(indexFile, 'utf8')) as { manifests: unknown[] })
    : { schemaVersion: 2, manifests: [] as unknown[] };
  index.manifests.push({
    mediaType: image.top.mediaType,
    digest: image.top.digest,
    size: image.top.bytes.length,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  await fs.promises.writeFile(indexFile, JSON.stringify(index));
}
