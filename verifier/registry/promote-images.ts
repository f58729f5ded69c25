/**
 * Promotion of the container images of a verified bundle (step 9, called by promote.ts inside its write
 * transaction, with the VM images): the staged blobs are renamed into the registry store (a blob already there stays
 * as it is), the image rows recorded, and each image audited. A failed transaction removes only the blob files this
 * promotion created; nothing is visible to a pull before the commit (the registry serves only recorded images).
 */
import fs from 'node:fs';
import { platformKey } from '../../sneakernet/oci/platform.js';
import { subjectName, type OciImageArtifact } from '../../sneakernet/statement.js';
import { appendAudit } from '../audit.js';
import type { Db } from '../db.js';
import type { StagedImageBlobs } from './blob-splitter.js';
import { promoteBlobs } from './blob-store.js';
import { recordContainerImage, type ImagePlatform } from './images.js';

/** What `import --json` says of each container image promoted (`containerImages`). */
export interface PromotedContainerImage {
  name: string;
  version: string;
  repository: string;
  tag: string;
  /** The vendor's manifest digest: what a pull returns. */
  digest: string;
  mediaType: string;
  platforms: string[];
  /** Blobs the image needs, and how many of them this bundle carried. */
  blobs: number;
  carriedBlobs: number;
  /** Bytes of every blob the image needs. */
  size: number;
}

export interface ImageToPromote {
  artifact: OciImageArtifact;
  staged: StagedImageBlobs;
}

export function describePromotion(i: ImageToPromote): PromotedContainerImage {
  const img = i.artifact.image;
  return {
    name: i.artifact.name,
    version: i.artifact.version,
    repository: img.repository,
    tag: img.tag,
    digest: img.digest,
    mediaType: img.mediaType,
    platforms: img.platforms.map(platformKey),
    blobs: img.blobs.length,
    carriedBlobs: img.blobs.filter((b) => b.carried).length,
    size: img.blobs.reduce((n, b) => n + b.size, 0),
  };
}

/**
 * Inside the promotion's transaction: blobs into the store, rows recorded, one audit event per image. Returns the
 * blob files created (for the caller to remove if the transaction fails).
 */
export function promoteContainerImages(
  db: Db,
  blobsDir: string,
  images: readonly ImageToPromote[],
  o: { bundleId: string; station: string; at: string },
): string[] {
  const staged = images.flatMap((i) =>
    i.staged.files.flatMap((f) => (f.file === null ? [] : [{ digest: f.digest, file: f.file }])),
  );
  const created = promoteBlobs(blobsDir, staged);
  try {
    recordImages(db, images, o);
  } catch (e) {
    for (const f of created) fs.rmSync(f, { force: true });
    throw e;
  }
  return created;
}

function recordImages(
  db: Db,
  images: readonly ImageToPromote[],
  o: { bundleId: string; station: string; at: string },
): void {
  for (const i of images) {
    const a = i.artifact;
    const platforms: ImagePlatform[] = a.image.platforms.map((p) =>
      p.variant
        ? { os: p.os, architecture: p.architecture, variant: p.variant }
        : { os: p.os, architecture: p.architecture },
    );
    const id = recordContainerImage(db, {
      repository: a.image.repository,
      tag: a.image.tag,
      version: a.version,
      name: a.name,
      digest: a.image.digest,
      mediaType: a.image.mediaType,
      platforms,
      blobs: a.image.blobs.map((b) => ({ digest: b.digest, size: b.size, mediaType: b.mediaType })),
      sha256: a.sha256,
      bundleId: o.bundleId,
      acceptedAt: o.at,
    });
    const d = describePromotion(i);
    appendAudit(db, {
      kind: 'container-image.promoted',
      outcome: 'info',
      message: `${a.name} ${a.version} is served as ${d.repository}:${d.tag} (${d.digest}): ${d.carriedBlobs} of ${d.blobs} blob(s) carried${d.platforms.length ? `, platforms ${d.platforms.join(', ')}` : ''}`,
      bundleId: o.bundleId,
      station: o.station,
      artifact: subjectName(a),
      details: { containerImageId: id, ...d },
    });
  }
}
