/**
 * OCI images built in the test, byte by byte: configs, layers (random bytes, or ones given to share a base), one
 * image manifest per platform and, for several platforms, an image index over them. Every digest is the real sha256
 * of the bytes. `storeImage` puts one in an import station's registry store as a verified import leaves it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../../verifier/db.js';
import { glanceTime } from '../../verifier/db.js';
import { promoteBlobs } from '../../verifier/registry/blob-store.js';
import { recordContainerImage, type ImagePlatform } from '../../verifier/registry/images.js';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip';

export interface TestBlob {
  digest: string;
  size: number;
  mediaType: string;
  bytes: Buffer;
}

export interface TestImage {
  /** The top manifest (the index for several platforms). */
  top: TestBlob;
  platforms: ImagePlatform[];
  /** Every blob, top manifest first, then per platform: manifest, config, layers (each digest once). */
  blobs: TestBlob[];
  /** The layers of each platform, in order (to share them with a next version). */
  layers: Map<string, TestBlob[]>;
}

export const sha256 = (b: Buffer): string => `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;

export function blobOf(bytes: Buffer, mediaType: string): TestBlob {
  return { digest: sha256(bytes), size: bytes.length, mediaType, bytes };
}

const descriptor = (b: TestBlob) => ({ mediaType: b.mediaType, digest: b.digest, size: b.size });

export function platformKey(p: ImagePlatform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/**
 * An image: one manifest per platform (each with its config and `layers` layers of `layerSize` random bytes, after
 * the `base` layers of that platform when given), under an index when there are several platforms or `index` is set.
 */
export function buildImage(o: {
  platforms: ImagePlatform[];
  layers?: number;
  layerSize?: number;
  base?: Map<string, TestBlob[]>;
  index?: boolean;
  label?: string;
}): TestImage {
  const manifests: TestBlob[] = [];
  const rest: TestBlob[] = [];
  const layers = new Map<string, TestBlob[]>();
  for (const p of o.platforms) {
    const own = Array.from({ length: o.layers ?? 2 }, () => blobOf(crypto.randomBytes(o.layerSize ?? 3000), OCI_LAYER));
    const all = [...(o.base?.get(platformKey(p)) ?? []), ...own];
    layers.set(platformKey(p), all);
    const config = blobOf(
      Buffer.from(
        JSON.stringify({
          architecture: p.architecture,
          os: p.os,
          ...(p.variant ? { variant: p.variant } : {}),
          config: { Labels: { 'test.label': o.label ?? 'x' } },
          rootfs: { type: 'layers', diff_ids: all.map((l) => sha256(l.bytes)) },
        }),
      ),
      OCI_CONFIG,
    );
    const manifest = blobOf(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: OCI_MANIFEST,
          config: descriptor(config),
          layers: all.map(descriptor),
        }),
      ),
      OCI_MANIFEST,
    );
    manifests.push(manifest);
    rest.push(manifest, config, ...all);
  }
  const first = manifests[0];
  if (!first) throw new Error('an image needs a platform');
  if (o.platforms.length === 1 && !o.index) {
    return { top: first, platforms: [], blobs: unique(rest), layers };
  }
  const index = blobOf(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: manifests.map((m, i) => ({ ...descriptor(m), platform: o.platforms[i] })),
      }),
    ),
    OCI_INDEX,
  );
  return { top: index, platforms: o.platforms, blobs: unique([index, ...rest]), layers };
}

function unique(blobs: TestBlob[]): TestBlob[] {
  const seen = new Set<string>();
  return blobs.filter((b) => (seen.has(b.digest) ? false : (seen.add(b.digest), true)));
}

/** Puts an image in the registry store (files promoted from a staging folder, rows recorded) as an import does. */
export function storeImage(
  db: Db,
  home: { registryBlobs: string; staging: string },
  image: TestImage,
  o: { repository: string; tag: string; version: string; name?: string; bundleId?: string },
): number {
  fs.mkdirSync(home.staging, { recursive: true });
  const staging = fs.mkdtempSync(path.join(home.staging, 'test-'));
  const staged = image.blobs.map((b) => {
    const file = path.join(staging, b.digest.slice(7));
    fs.writeFileSync(file, b.bytes);
    return { digest: b.digest, file };
  });
  promoteBlobs(home.registryBlobs, staged);
  fs.rmSync(staging, { recursive: true, force: true });
  return recordContainerImage(db, {
    repository: o.repository,
    tag: o.tag,
    version: o.version,
    name: o.name ?? o.repository.split('/').pop() ?? o.repository,
    digest: image.top.digest,
    mediaType: image.top.mediaType,
    platforms: image.platforms,
    blobs: image.blobs.map((b) => ({ digest: b.digest, size: b.size, mediaType: b.mediaType })),
    sha256: crypto
      .createHash('sha256')
      .update(Buffer.concat(image.blobs.map((b) => b.bytes)))
      .digest('hex'),
    bundleId: o.bundleId ?? 'b-test',
    acceptedAt: glanceTime(),
  });
}
