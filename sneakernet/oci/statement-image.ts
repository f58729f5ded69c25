/**
 * The `image` member of an `oci-image` artifact (docs/FORMAT.md 4.9) and the consistency rules a reader checks on it
 * from the statement alone, before reading any volume (4.3 rules 11–13): the top manifest is listed first and
 * carried, digests are unique, the carried sizes add up to the artifact's size, and each blob travels at most once per
 * bundle (a blob not carried by an artifact may be carried by an earlier one, never by a later one).
 */
import { z } from 'zod';
import { LIMITS } from '../limits.js';
import { artifactSize } from '../schema-parts.js';
import { mediaType, ociDigest } from './manifest.js';
import { IMAGE_MEDIA_TYPES, isIndexMediaType } from './media-types.js';
import { platformKey, platformSchema } from './platform.js';

/** A distribution-spec repository path without the registry host: `acme/app`, `library/debian`. */
export const REPOSITORY_PATTERN = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$/;
/** A distribution-spec tag. */
export const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export const repositorySchema = z.string().max(255).regex(REPOSITORY_PATTERN, 'a repository path such as acme/app');
export const tagSchema = z.string().regex(TAG_PATTERN, 'a tag (letters, digits, . _ -, at most 128)');

export const imageBlobSchema = z.strictObject({
  digest: ociDigest,
  size: artifactSize,
  mediaType,
  /** true: its bytes are in this artifact's carried stream; false: the reader holds it, or an earlier artifact carries it. */
  carried: z.boolean(),
});
export type ListedBlob = z.infer<typeof imageBlobSchema>;

export const ociImageSchema = z.strictObject({
  repository: repositorySchema,
  tag: tagSchema,
  /** The top manifest's digest: the vendor's digest, what a pull inside returns. */
  digest: ociDigest,
  mediaType: z.enum(IMAGE_MEDIA_TYPES),
  platforms: z.array(platformSchema).max(LIMITS.imagePlatforms),
  blobs: z.array(imageBlobSchema).min(1).max(LIMITS.imageBlobs),
});
export type OciImage = z.infer<typeof ociImageSchema>;

/** What the rules read of an oci-image artifact. */
export interface ImageSubject {
  name: string;
  version: string;
  size: number;
  image: OciImage;
}

/** Bytes of an image's carried stream: the sizes of its carried blobs, added. */
export function carriedSize(image: Pick<OciImage, 'blobs'>): number {
  return image.blobs.reduce((n, b) => (b.carried ? n + b.size : n), 0);
}

/** What is wrong with one oci-image artifact (4.3 rules 11 and 12), or null. */
export function ociImageProblem(a: ImageSubject): string | null {
  const key = `${a.name}@${a.version}`;
  const img = a.image;
  const top = img.blobs[0];
  if (!top || top.digest !== img.digest || top.mediaType !== img.mediaType) {
    return `the first blob of ${key} is not its top manifest ${img.digest}`;
  }
  if (!top.carried) return `${key} does not carry its top manifest ${img.digest}`;
  const digests = new Set<string>();
  for (const b of img.blobs) {
    if (digests.has(b.digest)) return `${key} lists the blob ${b.digest} twice`;
    digests.add(b.digest);
  }
  const total = carriedSize(img);
  if (total !== a.size) return `the carried blobs of ${key} add up to ${total} bytes, not its size ${a.size}`;
  const platforms = new Set<string>();
  for (const p of img.platforms) {
    const k = platformKey(p);
    if (platforms.has(k)) return `${key} lists the platform ${k} twice`;
    platforms.add(k);
  }
  if (!isIndexMediaType(img.mediaType) && img.platforms.length > 0) {
    return `${key} is a single manifest but lists platforms`;
  }
  return null;
}

/**
 * Rule 13, over the whole bundle: a blob is carried by at most one artifact, and an artifact that lists a blob as not
 * carried never comes before the artifact carrying it. Returns the problem, or null.
 */
export function bundleBlobProblem(images: ImageSubject[]): string | null {
  const carriedBy = new Map<string, number>();
  images.forEach((a, i) => {
    for (const b of a.image.blobs) if (b.carried && !carriedBy.has(b.digest)) carriedBy.set(b.digest, i);
  });
  const counted = new Set<string>();
  for (const [i, a] of images.entries()) {
    const key = `${a.name}@${a.version}`;
    for (const b of a.image.blobs) {
      const carrier = carriedBy.get(b.digest);
      if (b.carried) {
        if (counted.has(b.digest)) return `the blob ${b.digest} is carried twice in the bundle (again by ${key})`;
        counted.add(b.digest);
      } else if (carrier !== undefined && carrier > i) {
        return `${key} lists the blob ${b.digest} as not carried, but a later artifact carries it`;
      }
    }
  }
  return null;
}
