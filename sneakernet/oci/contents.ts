/**
 * What an OCI image is made of (docs/FORMAT.md 4.9): from its top document (index or manifest) and the child manifests
 * chosen, the platforms carried and the list of every blob the image needs, top manifest first. The export station
 * builds `image.blobs` and `image.platforms` with it; the import station recomputes them from the carried manifests
 * and compares (checkImageContents), so the two stations agree by construction.
 */
import crypto from 'node:crypto';
import { EcluseError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { parseImageDocument, type Descriptor, type IndexEntry } from './manifest.js';
import type { ImageMediaType } from './media-types.js';
import { platformKey, recordedPlatform, type Platform } from './platform.js';
import { checkId } from '../check-ids.js';

/** One content-addressed object an image needs. */
export interface ImageBlob {
  digest: string;
  size: number;
  mediaType: string;
}

/** The top document of an image: its bytes, its digest (the vendor's digest) and its media type. */
export interface ImageTop {
  digest: string;
  mediaType: ImageMediaType;
  bytes: Buffer;
}

export interface ImageContents {
  /** Platforms carried, in index order, without repeats ([] for a single manifest). */
  platforms: Platform[];
  /** The child manifests carried (index entries), in index order ([] for a single manifest). */
  manifests: IndexEntry[];
  /** Every blob the image needs: top manifest, then per child manifest: itself, its config, its layers; no repeats. */
  blobs: ImageBlob[];
}

/** `sha256:<hex>` of some bytes. */
export function ociDigestOf(bytes: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
}

/** The short form of a digest for messages: `sha256:0123456789ab`. */
export function shortDigest(digest: string): string {
  return digest.slice(0, 19);
}

function checkBytes(bytes: Buffer, d: { digest: string; size: number }, what: string): void {
  if (bytes.length !== d.size) {
    throw new EcluseError('E_SIZE', `${what} is ${bytes.length} bytes, its descriptor says ${d.size}`, {
      check: checkId('image-blob-size'),
      blob: d.digest,
    });
  }
  const got = ociDigestOf(bytes);
  if (got !== d.digest) {
    throw new EcluseError('E_DIGEST', `${what} has the digest ${got}, not ${d.digest}`, {
      check: checkId('image-blob-digest'),
      blob: d.digest,
    });
  }
}

/**
 * The platforms and blobs of an image. `child(entry)` returns the bytes of a child manifest (undefined when they are
 * not at hand: E_IMAGE_BLOB_MISSING); `carry(entry)` says whether an index entry is carried (the export station: does
 * its platform match the ones asked; the import station: does `image.blobs` list it). Checks every document's bytes
 * against its digest and size, parses each strictly with bounds (E_IMAGE_MANIFEST), and bounds the blob count.
 */
export function imageContents(
  top: ImageTop,
  child: (entry: IndexEntry) => Buffer | undefined,
  carry: (entry: IndexEntry) => boolean,
  name = 'the image',
): ImageContents {
  checkBytes(top.bytes, { digest: top.digest, size: top.bytes.length }, `the top manifest of ${name}`);
  const blobs: ImageBlob[] = [];
  const seen = new Set<string>();
  const add = (d: { digest: string; size: number; mediaType: string }) => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    blobs.push({ digest: d.digest, size: d.size, mediaType: d.mediaType });
    if (blobs.length > LIMITS.imageBlobs) {
      throw new EcluseError('E_IMAGE_MANIFEST', `${name} needs more than ${LIMITS.imageBlobs} blobs`, {
        check: checkId('image-blob-count'),
      });
    }
  };
  const addManifest = (d: Descriptor, doc: Buffer, what: string) => {
    const m = parseImageDocument(doc, d.mediaType, what);
    if (m.kind !== 'manifest') throw new EcluseError('E_INTERNAL', `${what} parsed as an index`);
    add(d);
    add(m.config);
    for (const l of m.layers) add(l);
  };
  const topWhat = `the top manifest ${shortDigest(top.digest)} of ${name}`;
  const doc = parseImageDocument(top.bytes, top.mediaType, topWhat);
  const topDescriptor = { digest: top.digest, size: top.bytes.length, mediaType: top.mediaType };
  if (doc.kind === 'manifest') {
    addManifest(topDescriptor, top.bytes, topWhat);
    return { platforms: [], manifests: [], blobs };
  }
  add(topDescriptor);
  const platforms = new Map<string, Platform>();
  const manifests: IndexEntry[] = [];
  for (const entry of doc.manifests) {
    if (!carry(entry)) continue;
    const what = `the manifest ${shortDigest(entry.digest)}${entry.platform ? ` (${platformKey(recordedPlatform(entry.platform))})` : ''} of ${name}`;
    manifests.push(entry);
    if (entry.platform) {
      const p = recordedPlatform(entry.platform);
      platforms.set(platformKey(p), p);
    }
    if (seen.has(entry.digest)) continue;
    const bytes = child(entry);
    if (!bytes) {
      throw new EcluseError('E_IMAGE_BLOB_MISSING', `${what} is needed but neither carried nor held`, {
        check: checkId('image-blob-missing'),
        blob: entry.digest,
      });
    }
    checkBytes(bytes, entry, what);
    addManifest(entry, bytes, what);
  }
  if (manifests.length === 0) {
    throw new EcluseError('E_IMAGE_MANIFEST', `${topWhat} carries none of its ${doc.manifests.length} manifests`, {
      check: checkId('image-platforms'),
    });
  }
  if (platforms.size > LIMITS.imagePlatforms) {
    throw new EcluseError('E_IMAGE_MANIFEST', `${name} carries more than ${LIMITS.imagePlatforms} platforms`, {
      check: checkId('image-platforms'),
    });
  }
  return { platforms: [...platforms.values()], manifests, blobs };
}

/** What the statement says of an image (4.9 `image`), as far as checkImageContents compares it. */
export interface ListedImage {
  digest: string;
  platforms: Platform[];
  blobs: Array<ImageBlob & { carried: boolean }>;
}

/**
 * The import station's check that the carried manifests need exactly the blobs the statement lists, with the sizes
 * and media types it lists, and carry exactly its platforms. A needed blob the statement does not list:
 * E_IMAGE_BLOB_MISSING; a listed blob no carried manifest needs, or a size, media type or platform that differs:
 * E_IMAGE_MANIFEST.
 */
export function checkImageContents(listed: ListedImage, derived: ImageContents, name: string): void {
  const byDigest = new Map(listed.blobs.map((b) => [b.digest, b]));
  for (const b of derived.blobs) {
    const l = byDigest.get(b.digest);
    if (!l) {
      throw new EcluseError(
        'E_IMAGE_BLOB_MISSING',
        `${name} needs the blob ${b.digest}, which its statement does not list`,
        { check: checkId('image-blob-missing'), blob: b.digest },
      );
    }
    if (l.size !== b.size || l.mediaType !== b.mediaType) {
      throw new EcluseError(
        'E_IMAGE_MANIFEST',
        `${name}: the blob ${b.digest} is listed as ${l.size} bytes of ${l.mediaType}, its manifest says ${b.size} bytes of ${b.mediaType}`,
        { check: checkId('image-blob-list'), blob: b.digest },
      );
    }
  }
  if (derived.blobs.length !== listed.blobs.length) {
    const needed = new Set(derived.blobs.map((b) => b.digest));
    const extra = listed.blobs.find((b) => !needed.has(b.digest));
    throw new EcluseError(
      'E_IMAGE_MANIFEST',
      `${name} lists the blob ${extra?.digest ?? '?'}, which none of its carried manifests needs`,
      { check: checkId('image-blob-list'), blob: extra?.digest },
    );
  }
  const want = listed.platforms.map(platformKey).sort().join(', ');
  const got = derived.platforms.map(platformKey).sort().join(', ');
  if (want !== got) {
    throw new EcluseError('E_IMAGE_MANIFEST', `${name} carries the platforms [${got}], its statement says [${want}]`, {
      check: checkId('image-platforms'),
    });
  }
}
