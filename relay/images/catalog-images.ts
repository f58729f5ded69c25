/**
 * OCI images in the export station's catalog: an `artifacts` row of type `oci-image` (name, version, the full carried
 * stream's size and digests, provenance) with its `images` row (reference, repository, tag, digest, media type,
 * platforms, blob list) and its `image_blobs` rows (which store blobs it needs). The blobs themselves are the store's
 * content-addressed files, shared between images.
 */
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import type { ImageBlob } from '../../sneakernet/oci/contents.js';
import { IMAGE_MEDIA_TYPES, type ImageMediaType } from '../../sneakernet/oci/media-types.js';
import { platformSchema, type Platform } from '../../sneakernet/oci/platform.js';
import { isoSeconds } from '../../sneakernet/statement.js';
import { jsonText, storedRows } from '../../sneakernet/stored-rows.js';
import { artifactNamed, type ArtifactRow } from '../artifacts.js';
import type { RelayDb } from '../catalog.js';

const ADVICE = 'remove that image (ecluse relay remove NAME@VERSION) and add it again, or restore the station home';

/** A row of `images` as stored, its JSON columns parsed and checked. */
const imageRow = z.object({
  artifact_id: z.number().int().positive(),
  reference: z.string(),
  repository: z.string(),
  tag: z.string(),
  digest: z.string(),
  media_type: z.enum(IMAGE_MEDIA_TYPES),
  /** JSON: Platform[]. */
  platforms: jsonText(z.array(platformSchema)),
  /** JSON: ImageBlob[] in `image.blobs` order (top manifest first). */
  blobs: jsonText(
    z.array(z.object({ digest: z.string(), size: z.number().int().nonnegative(), mediaType: z.string() })),
  ),
});
const images = storedRows('images', imageRow, ADVICE);
const blobDigests = storedRows('image_blobs', z.object({ digest: z.string() }), ADVICE);

/** What the catalog knows of one image, decoded. */
export interface CatalogImage {
  artifactId: number;
  reference: string;
  repository: string;
  tag: string;
  digest: string;
  mediaType: ImageMediaType;
  platforms: Platform[];
  blobs: ImageBlob[];
}

export function imageOf(db: RelayDb, artifactId: number): CatalogImage {
  const r = images.get(db, 'SELECT * FROM images WHERE artifact_id = ?', artifactId);
  if (!r) {
    throw new EcluseError(
      'E_DATABASE',
      `the catalog has no image record for artifact ${artifactId}: the catalog is damaged`,
    );
  }
  return {
    artifactId: r.artifact_id,
    reference: r.reference,
    repository: r.repository,
    tag: r.tag,
    digest: r.digest,
    mediaType: r.media_type,
    platforms: r.platforms,
    blobs: r.blobs,
  };
}

export interface NewImage {
  name: string;
  version: string;
  reference: string;
  repository: string;
  tag: string;
  digest: string;
  mediaType: ImageMediaType;
  platforms: Platform[];
  blobs: ImageBlob[];
  size: number;
  sha256: string;
  sha512: string;
  properties: Record<string, string>;
  vendor: string | null;
  evidence: string | null;
  /** The vendor feed it came from (`relay fetch`), or null for `relay add-image`. */
  feed?: string | null;
}

/**
 * Records an image (its blobs are already in the store). The same name and version with the same digest and
 * platforms is a no-op (`created: false`); with another digest or platforms, a refusal (give a new version).
 */
export function recordImage(db: RelayDb, n: NewImage): { artifact: ArtifactRow; created: boolean } {
  return db.transaction(() => {
    const existing = artifactNamed(db, n.name, n.version);
    if (existing) {
      if (existing.type === 'oci-image' && existing.sha256 === n.sha256) return { artifact: existing, created: false };
      throw new EcluseError(
        'E_INPUT',
        `${n.name} ${n.version} is already in the catalog${existing.type === 'oci-image' ? ' with another image or other platforms' : ' as a VM image'}: give this image a new --version`,
        { check: 'catalog' },
      );
    }
    db.prepare(
      `INSERT INTO artifacts (name, version, type, size, sha256, sha512, md5, disk_format, container_format, properties,
           vendor, source, added_at, evidence, feed) VALUES (?, ?, 'oci-image', ?, ?, ?, NULL, '', '', ?, ?, ?, ?, ?, ?)`,
    ).run(
      n.name,
      n.version,
      n.size,
      n.sha256,
      n.sha512,
      JSON.stringify(n.properties),
      n.vendor,
      n.reference,
      isoSeconds(),
      n.evidence,
      n.feed ?? null,
    );
    const artifact = artifactNamed(db, n.name, n.version);
    if (!artifact)
      throw new EcluseError('E_DATABASE', `the catalog did not keep ${n.name} ${n.version}: the catalog is damaged`);
    db.prepare(
      `INSERT INTO images (artifact_id, reference, repository, tag, digest, media_type, platforms, blobs)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      artifact.id,
      n.reference,
      n.repository,
      n.tag,
      n.digest,
      n.mediaType,
      JSON.stringify(n.platforms),
      JSON.stringify(n.blobs),
    );
    const link = db.prepare('INSERT OR IGNORE INTO image_blobs (digest, artifact_id) VALUES (?, ?)');
    for (const b of n.blobs) link.run(b.digest, artifact.id);
    return { artifact, created: true };
  })();
}

/**
 * Forgets an image's record; returns the digests of its blobs no other image needs (the caller removes those files
 * unless a VM image has the same bytes).
 */
export function forgetImage(db: RelayDb, artifactId: number): string[] {
  const mine = blobDigests
    .all(db, 'SELECT digest FROM image_blobs WHERE artifact_id = ?', artifactId)
    .map((r) => r.digest);
  db.prepare('DELETE FROM image_blobs WHERE artifact_id = ?').run(artifactId);
  db.prepare('DELETE FROM images WHERE artifact_id = ?').run(artifactId);
  const still = db.prepare('SELECT 1 FROM image_blobs WHERE digest = ? LIMIT 1');
  const vm = db.prepare("SELECT 1 FROM artifacts WHERE sha256 = ? AND type = 'vm-image' LIMIT 1");
  return mine.filter((d) => !still.get(d) && !vm.get(d.slice('sha256:'.length)));
}
