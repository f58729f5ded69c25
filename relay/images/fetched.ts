/**
 * What skopeo fetched (a `dir:` folder, private to the export station), read as the import station will read it: the
 * top manifest and the child manifests of the platforms asked for are parsed with the shared bounded parsers
 * (sneakernet/oci/), every blob the carried image needs is checked against its digest and size, then moved into the
 * relay's content-addressed store (`<home>/blobs/sha256/<hex>`, shared by every image: a layer is stored once).
 * The digests of the full carried stream (every blob, in `image.blobs` order) are computed in the same pass.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { EcluseError } from '../../sneakernet/errors.js';
import { LIMITS } from '../../sneakernet/limits.js';
import { imageContents, shortDigest, type ImageBlob, type ImageContents } from '../../sneakernet/oci/contents.js';
import { parseImageConfig, type IndexEntry } from '../../sneakernet/oci/manifest.js';
import {
  IMAGE_MEDIA_TYPES,
  OCI_INDEX,
  OCI_MANIFEST,
  isIndexMediaType,
  type ImageMediaType,
} from '../../sneakernet/oci/media-types.js';
import { platformKey, platformMatches, recordedPlatform, type Platform } from '../../sneakernet/oci/platform.js';
import { blobPath, type RelayHome } from '../catalog.js';

const hexOf = (digest: string) => digest.slice('sha256:'.length);

function readBounded(file: string, max: number, what: string): Buffer {
  const st = fs.lstatSync(file, { throwIfNoEntry: false });
  if (!st?.isFile()) {
    throw new EcluseError('E_IMAGE_BLOB_MISSING', `${what} was not fetched (${path.basename(file)} is missing)`, {
      check: 'image-blob-missing',
    });
  }
  if (st.size > max) {
    throw new EcluseError('E_IMAGE_MANIFEST', `${what} is ${st.size} bytes, more than the ${max} allowed`, {
      check: 'image-manifest',
    });
  }
  return fs.readFileSync(file);
}

/** The top manifest's media type: the one it declares (Docker types always do), else OCI index or manifest by shape. */
function topMediaType(bytes: Buffer, source: string): ImageMediaType {
  let declared: unknown;
  let shape: 'index' | 'manifest' = 'manifest';
  try {
    const j = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    declared = j.mediaType;
    if (Array.isArray(j.manifests)) shape = 'index';
  } catch {
    // parsed strictly later (E_IMAGE_MANIFEST)
  }
  if (declared === undefined) return shape === 'index' ? OCI_INDEX : OCI_MANIFEST;
  if (typeof declared === 'string' && (IMAGE_MEDIA_TYPES as readonly string[]).includes(declared)) {
    return declared as ImageMediaType;
  }
  throw new EcluseError(
    'E_IMAGE_MANIFEST',
    `${source} is of the media type ${JSON.stringify(declared).slice(0, 120)}, not an image manifest or index écluse carries (docs/FORMAT.md 4.9)`,
    { check: 'image-manifest' },
  );
}

export interface FetchedImage {
  digest: string;
  mediaType: ImageMediaType;
  contents: ImageContents;
  /** Every platform the vendor's index offers (for messages), [] for a single manifest. */
  offered: Platform[];
  /** Bytes and digests of the full carried stream (every blob of `contents.blobs`, in order). */
  size: number;
  sha256: string;
  sha512: string;
  /** Blobs of `contents.blobs` this add stored for the first time (the others were in the store already). */
  stored: number;
}

/**
 * Reads the `dir:` folder `dir`, selects the platforms `asked` (all when empty) and returns the image. `source` names
 * it in messages. Nothing is moved into the store here (see storeBlobs).
 */
export function readFetched(
  dir: string,
  asked: Platform[],
  source: string,
): Omit<FetchedImage, 'size' | 'sha256' | 'sha512' | 'stored'> {
  const names = fs.readdirSync(dir);
  if (names.length > LIMITS.imageBlobs + 16) {
    throw new EcluseError('E_IMAGE_MANIFEST', `${source} holds more than ${LIMITS.imageBlobs} blobs`, {
      check: 'image-blob-count',
    });
  }
  const topBytes = readBounded(
    path.join(dir, 'manifest.json'),
    LIMITS.imageManifestBytes,
    `the top manifest of ${source}`,
  );
  const digest = `sha256:${createHash('sha256').update(topBytes).digest('hex')}`;
  const mediaType = topMediaType(topBytes, `the top manifest of ${source}`);
  const child = (e: IndexEntry) => {
    const file = path.join(dir, `${hexOf(e.digest)}.manifest.json`);
    return fs.existsSync(file)
      ? readBounded(file, LIMITS.imageManifestBytes, `the manifest ${shortDigest(e.digest)}`)
      : undefined;
  };
  let offered: Platform[] = [];
  const carry = (e: IndexEntry) => asked.length === 0 || asked.some((p) => platformMatches(p, e.platform));
  if (isIndexMediaType(mediaType)) {
    // The platforms on offer, for a clear refusal when none matches what was asked.
    const entries = (JSON.parse(topBytes.toString('utf8')) as { manifests?: IndexEntry[] }).manifests ?? [];
    offered = entries.flatMap((e) => (e.platform ? [recordedPlatform(e.platform)] : []));
    if (asked.length > 0 && !entries.some(carry)) {
      throw new EcluseError(
        'E_USAGE',
        `${source} offers no platform matching ${asked.map(platformKey).join(', ')}; it offers ${offered.map(platformKey).join(', ') || 'none'}`,
        { check: 'platform' },
      );
    }
  }
  const contents = imageContents({ digest, mediaType, bytes: topBytes }, child, carry, source);
  if (!isIndexMediaType(mediaType) && asked.length > 0) {
    const configBlob = contents.blobs[1] as ImageBlob;
    const config = parseImageConfig(
      readBounded(path.join(dir, hexOf(configBlob.digest)), LIMITS.imageConfigBytes, `the config of ${source}`),
      `the config of ${source}`,
    );
    const own =
      config.os && config.architecture
        ? recordedPlatform({ os: config.os, architecture: config.architecture, variant: config.variant })
        : null;
    if (!own || !asked.some((p) => platformMatches(p, own))) {
      throw new EcluseError(
        'E_USAGE',
        `${source} is a single manifest for ${own ? platformKey(own) : 'no named platform'}, not ${asked.map(platformKey).join(', ')}: leave out --platform`,
        { check: 'platform' },
      );
    }
  }
  return { digest, mediaType, contents, offered };
}

/** The file of a blob in a `dir:` folder: manifest.json for the top, `<hex>.manifest.json` for children, else `<hex>`. */
function fileOf(dir: string, b: ImageBlob, top: string): string {
  if (b.digest === top) return path.join(dir, 'manifest.json');
  const asManifest = path.join(dir, `${hexOf(b.digest)}.manifest.json`);
  return fs.existsSync(asManifest) ? asManifest : path.join(dir, hexOf(b.digest));
}

/**
 * Checks every blob of the image (size, sha256) while hashing the full carried stream, and moves each blob the store
 * lacks into it (fsynced, then renamed: a blob in the store is always whole and checked). The folder `dir` must be on
 * the store's filesystem. A blob already in the store is left as it is (content-addressed: same digest, same bytes).
 */
export async function storeBlobs(
  home: RelayHome,
  dir: string,
  image: Omit<FetchedImage, 'size' | 'sha256' | 'sha512' | 'stored'>,
  signal?: AbortSignal,
): Promise<FetchedImage> {
  const s256 = createHash('sha256');
  const s512 = createHash('sha512');
  let size = 0;
  let stored = 0;
  for (const b of image.contents.blobs) {
    signal?.throwIfAborted();
    const file = fileOf(dir, b, image.digest);
    const st = await fs.promises.lstat(file).catch(() => null);
    if (!st?.isFile()) {
      throw new EcluseError('E_IMAGE_BLOB_MISSING', `the blob ${b.digest} of ${b.mediaType} was not fetched`, {
        check: 'image-blob-missing',
        blob: b.digest,
      });
    }
    if (st.size !== b.size) {
      throw new EcluseError('E_SIZE', `the blob ${b.digest} is ${st.size} bytes, its manifest says ${b.size}`, {
        check: 'image-blob-size',
        blob: b.digest,
      });
    }
    const h = createHash('sha256');
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) {
      h.update(chunk as Buffer);
      s256.update(chunk as Buffer);
      s512.update(chunk as Buffer);
    }
    if (`sha256:${h.digest('hex')}` !== b.digest) {
      throw new EcluseError('E_DIGEST', `the blob ${b.digest} fetched does not match its digest`, {
        check: 'image-blob-digest',
        blob: b.digest,
      });
    }
    size += b.size;
    const target = blobPath(home, hexOf(b.digest));
    if (fs.existsSync(target)) continue;
    const fd = await fs.promises.open(file, 'r+');
    try {
      await fd.sync();
    } finally {
      await fd.close();
    }
    await fs.promises.rename(file, target);
    stored++;
  }
  return { ...image, size, sha256: s256.digest('hex'), sha512: s512.digest('hex'), stored };
}
