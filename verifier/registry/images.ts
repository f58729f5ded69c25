/**
 * The container images the import station holds, all of the SQL of `container_images`, `container_image_blobs` and
 * `registry_blobs`: recorded in the promotion's transaction, read by the registry API, the receipts, the status and
 * the web view. Rows are validated when read (a row the schema does not describe is E_STORE, never an unchecked cast).
 */
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import type { Db } from '../db.js';

/** Media types a manifest (or an index of manifests) is served with. */
export const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

const platform = z.strictObject({
  os: z.string().max(128),
  architecture: z.string().max(128),
  variant: z.string().max(128).optional(),
});
export type ImagePlatform = z.infer<typeof platform>;

const imageRow = z.object({
  id: z.number().int().positive(),
  repository: z.string(),
  tag: z.string(),
  version: z.string(),
  name: z.string(),
  digest: z.string().regex(/^sha256:[a-f0-9]{64}$/),
  media_type: z.string(),
  platforms: z.string().transform((text, ctx) => {
    try {
      return z.array(platform).parse(JSON.parse(text));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'platforms is not a JSON list of platforms' });
      return z.NEVER;
    }
  }),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[a-f0-9]{64}$/),
  bundle_id: z.string(),
  accepted_at: z.string(),
});

/** One container image as the registry serves it. */
export interface ContainerImage {
  id: number;
  repository: string;
  tag: string;
  version: string;
  /** The artifact's name in the bundle (the operator's `--name` outside). */
  name: string;
  /** The top manifest's digest, the vendor's: what a pull returns. */
  digest: string;
  mediaType: string;
  platforms: ImagePlatform[];
  /** Bytes of every blob the image needs. */
  size: number;
  /** The artifact's signed sha256 (of the blobs it carried). */
  sha256: string;
  bundleId: string;
  acceptedAt: string;
}

const blobRow = z.object({ digest: z.string(), size: z.number().int().nonnegative(), media_type: z.string() });

/** A blob an image needs, as the signed statement lists it. */
export interface ImageBlob {
  digest: string;
  size: number;
  mediaType: string;
}

function malformed(table: string, r: z.ZodSafeParseError<unknown>): EcluseError {
  const issue = r.error.issues[0];
  return new EcluseError(
    'E_STORE',
    `a row of ${table} is malformed (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'unreadable'}): run "ecluse store check" and restore the home from its last backup if it reports damage`,
    { check: 'catalog-row', table },
  );
}

function toImage(row: unknown): ContainerImage {
  const r = imageRow.safeParse(row);
  if (!r.success) throw malformed('container_images', r);
  const x = r.data;
  return {
    id: x.id,
    repository: x.repository,
    tag: x.tag,
    version: x.version,
    name: x.name,
    digest: x.digest,
    mediaType: x.media_type,
    platforms: x.platforms,
    size: x.size,
    sha256: x.sha256,
    bundleId: x.bundle_id,
    acceptedAt: x.accepted_at,
  };
}

function toBlob(row: unknown): ImageBlob {
  const r = blobRow.safeParse(row);
  if (!r.success) throw malformed('container_image_blobs', r);
  return { digest: r.data.digest, size: r.data.size, mediaType: r.data.media_type };
}

export interface NewContainerImage {
  repository: string;
  tag: string;
  version: string;
  name: string;
  digest: string;
  mediaType: string;
  platforms: readonly ImagePlatform[];
  /** Every blob the image needs, top manifest first; each is in the blob store when this is called. */
  blobs: readonly ImageBlob[];
  /** The artifact's signed sha256. */
  sha256: string;
  bundleId: string;
  acceptedAt: string;
}

/**
 * Records an accepted image and its blobs (run inside the promotion's transaction, after the blob files are in
 * place). A blob already recorded keeps the bundle that first brought it. Returns the image's id.
 */
export function recordContainerImage(db: Db, i: NewContainerImage): number {
  const size = i.blobs.reduce((s, b) => s + b.size, 0);
  const info = db
    .prepare(
      `INSERT INTO container_images (repository, tag, version, name, digest, media_type, platforms, size, sha256, bundle_id, accepted_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      i.repository,
      i.tag,
      i.version,
      i.name,
      i.digest,
      i.mediaType,
      JSON.stringify(i.platforms),
      size,
      i.sha256,
      i.bundleId,
      i.acceptedAt,
    );
  const id = Number(info.lastInsertRowid);
  const held = db.prepare(
    'INSERT OR IGNORE INTO registry_blobs (digest, size, bundle_id, stored_at) VALUES (?, ?, ?, ?)',
  );
  const member = db.prepare(
    'INSERT INTO container_image_blobs (image_id, position, digest, size, media_type) VALUES (?, ?, ?, ?, ?)',
  );
  i.blobs.forEach((b, position) => {
    held.run(b.digest, b.size, i.bundleId, i.acceptedAt);
    member.run(id, position, b.digest, b.size, b.mediaType);
  });
  return id;
}

/** The image a tag of a repository names: the one accepted last under that tag. */
export function imageByTag(db: Db, repository: string, tag: string): ContainerImage | undefined {
  const row = db
    .prepare('SELECT * FROM container_images WHERE repository = ? AND tag = ? ORDER BY id DESC LIMIT 1')
    .get(repository, tag);
  return row === undefined ? undefined : toImage(row);
}

/** Every image, newest first (the web view, the status). */
export function containerImages(db: Db, limit = 10_000): ContainerImage[] {
  return db.prepare('SELECT * FROM container_images ORDER BY id DESC LIMIT ?').all(limit).map(toImage);
}

/** The images of one repository, newest first. */
export function imagesOfRepository(db: Db, repository: string): ContainerImage[] {
  return db
    .prepare('SELECT * FROM container_images WHERE repository = ? ORDER BY id DESC')
    .all(repository)
    .map(toImage);
}

/** The blobs one image needs, in the signed order (top manifest first). */
export function blobsOfImage(db: Db, imageId: number): ImageBlob[] {
  return db
    .prepare('SELECT digest, size, media_type FROM container_image_blobs WHERE image_id = ? ORDER BY position')
    .all(imageId)
    .map(toBlob);
}

export function repositoryExists(db: Db, repository: string): boolean {
  return db.prepare('SELECT 1 FROM container_images WHERE repository = ? LIMIT 1').get(repository) !== undefined;
}

/**
 * A manifest (top or child) of an image of `repository` by its digest, with the media type it was signed with; only
 * digests listed with a manifest media type are manifests (a layer is never served from `/manifests/`).
 */
export function manifestOfRepository(db: Db, repository: string, digest: string): ImageBlob | undefined {
  const row = db
    .prepare(
      `SELECT b.digest, b.size, b.media_type FROM container_image_blobs b JOIN container_images i ON i.id = b.image_id
       WHERE i.repository = ? AND b.digest = ? AND b.media_type IN (${MANIFEST_MEDIA_TYPES.map(() => '?').join(', ')})
       ORDER BY b.image_id DESC LIMIT 1`,
    )
    .get(repository, digest, ...MANIFEST_MEDIA_TYPES);
  return row === undefined ? undefined : toBlob(row);
}

/** A blob some image of `repository` needs (a pull never reaches another repository's blobs). */
export function blobOfRepository(db: Db, repository: string, digest: string): ImageBlob | undefined {
  const row = db
    .prepare(
      `SELECT b.digest, b.size, b.media_type FROM container_image_blobs b JOIN container_images i ON i.id = b.image_id
       WHERE i.repository = ? AND b.digest = ? ORDER BY b.image_id DESC LIMIT 1`,
    )
    .get(repository, digest);
  return row === undefined ? undefined : toBlob(row);
}

/** Repository names in order, after `last`, at most `n`. */
export function repositoryPage(db: Db, last: string | undefined, n: number): string[] {
  return db
    .prepare('SELECT DISTINCT repository FROM container_images WHERE repository > ? ORDER BY repository LIMIT ?')
    .pluck()
    .all(last ?? '', n)
    .map((r) => z.string().parse(r));
}

/** Tags of a repository in order, after `last`, at most `n`. */
export function tagPage(db: Db, repository: string, last: string | undefined, n: number): string[] {
  return db
    .prepare('SELECT DISTINCT tag FROM container_images WHERE repository = ? AND tag > ? ORDER BY tag LIMIT ?')
    .pluck()
    .all(repository, last ?? '', n)
    .map((r) => z.string().parse(r));
}

/** Whether the store holds a blob (recorded; its file was promoted in the same step). */
export function holdsBlob(db: Db, digest: string): boolean {
  return db.prepare('SELECT 1 FROM registry_blobs WHERE digest = ?').get(digest) !== undefined;
}

/** The sha256 hex of every blob the store holds, sorted (a receipt's `inventory.blobs`). */
export function heldBlobHexes(db: Db, limit: number): string[] {
  return db
    .prepare('SELECT substr(digest, 8) FROM registry_blobs ORDER BY digest LIMIT ?')
    .pluck()
    .all(limit)
    .map((r) => z.string().parse(r));
}

/** How many images and blobs (and their bytes) the registry holds, for `status --json`. */
export function registryCounts(db: Db): { images: number; repositories: number; blobs: number; bytes: number } {
  const counts = z
    .object({ images: z.number(), repositories: z.number() })
    .parse(
      db.prepare('SELECT count(*) AS images, count(DISTINCT repository) AS repositories FROM container_images').get(),
    );
  const blobs = z
    .object({ blobs: z.number(), bytes: z.number().nullable() })
    .parse(db.prepare('SELECT count(*) AS blobs, sum(size) AS bytes FROM registry_blobs').get());
  return { ...counts, blobs: blobs.blobs, bytes: blobs.bytes ?? 0 };
}

/** Every blob the store records, with its size (store check). */
export function recordedBlobs(db: Db): Array<{ digest: string; size: number }> {
  return db
    .prepare('SELECT digest, size FROM registry_blobs ORDER BY digest')
    .all()
    .map((row) => z.object({ digest: z.string().regex(/^sha256:[a-f0-9]{64}$/), size: z.number().int() }).parse(row));
}

/** The container images one bundle brought, by repository and tag. */
export function containerImagesOfBundle(db: Db, bundleId: string): ContainerImage[] {
  return db
    .prepare('SELECT * FROM container_images WHERE bundle_id = ? ORDER BY repository, tag')
    .all(bundleId)
    .map(toImage);
}
