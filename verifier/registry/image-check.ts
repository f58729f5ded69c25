/**
 * The import station's checks of oci-image artifacts (docs/FORMAT.md 4.9), in the order of an import:
 *
 *   - from the statement alone, before any volume is read (`checkHeldBlobs`): every listed blob not carried is held
 *     by the registry store or carried by an earlier artifact of the bundle (E_IMAGE_BLOB_MISSING otherwise);
 *   - once the carried blobs are staged and each verified by its digest (blob-splitter.ts), `checkStagedImage`: the
 *     top manifest and each carried child manifest parsed strictly with the shared sneakernet/oci parsers
 *     (E_IMAGE_MANIFEST), the blobs they need equal to `image.blobs`, the platforms to `image.platforms`.
 */
import fs from 'node:fs';
import { EcluseError } from '../../sneakernet/errors.js';
import { LIMITS } from '../../sneakernet/limits.js';
import { checkImageContents, imageContents, shortDigest } from '../../sneakernet/oci/contents.js';
import { subjectName, type Artifact, type OciImageArtifact } from '../../sneakernet/statement.js';
import type { Db } from '../db.js';
import { blobFile } from './blob-store.js';
import { holdsBlob } from './images.js';
import type { StagedImageBlobs } from './blob-splitter.js';

const ociImages = (artifacts: readonly Artifact[]): OciImageArtifact[] =>
  artifacts.filter((a): a is OciImageArtifact => a.type === 'oci-image');

/**
 * Every blob an image lists as not carried must be held here or carried by an earlier artifact of the same bundle.
 * Returns how many blobs the images take from the store (for the check's line).
 */
export function checkHeldBlobs(db: Db, artifacts: readonly Artifact[]): number {
  const carried = new Set<string>();
  let fromStore = 0;
  for (const a of ociImages(artifacts)) {
    for (const b of a.image.blobs) {
      if (b.carried) continue;
      if (carried.has(b.digest)) continue;
      if (!holdsBlob(db, b.digest)) {
        throw new EcluseError(
          'E_IMAGE_BLOB_MISSING',
          `${a.name} ${a.version} needs the blob ${shortDigest(b.digest)} (${b.mediaType}), which this bundle does not carry and this station does not hold (import first the bundle that carries it)`,
          { check: 'image-blob-missing', artifact: subjectName(a), blob: b.digest },
        );
      }
      fromStore++;
    }
    for (const b of a.image.blobs) if (b.carried) carried.add(b.digest);
  }
  return fromStore;
}

/** A manifest the store already holds, read within its bound (its digest is checked by the parser's caller). */
function heldDocument(db: Db, blobsDir: string, digest: string): Buffer | undefined {
  if (!holdsBlob(db, digest)) return undefined;
  const file = blobFile(blobsDir, digest);
  try {
    const { size } = fs.statSync(file);
    if (size > LIMITS.imageManifestBytes) return undefined;
    return fs.readFileSync(file);
  } catch {
    return undefined;
  }
}

/**
 * The strict parse and the blob-set check of one staged image. `earlier` holds the documents carried by the
 * artifacts before it in the bundle (a child manifest may travel with an earlier image).
 */
export function checkStagedImage(
  db: Db,
  blobsDir: string,
  a: OciImageArtifact,
  staged: StagedImageBlobs,
  earlier: ReadonlyMap<string, Buffer>,
): void {
  const name = `${a.name} ${a.version}`;
  const top = staged.documents.get(a.image.digest);
  if (!top) {
    throw new EcluseError('E_IMAGE_BLOB_MISSING', `${name} does not carry its top manifest ${a.image.digest}`, {
      check: 'image-blob-missing',
      artifact: subjectName(a),
      blob: a.image.digest,
    });
  }
  const listed = new Set(a.image.blobs.map((b) => b.digest));
  const derived = imageContents(
    { digest: a.image.digest, mediaType: a.image.mediaType, bytes: top },
    (entry) =>
      staged.documents.get(entry.digest) ?? earlier.get(entry.digest) ?? heldDocument(db, blobsDir, entry.digest),
    (entry) => listed.has(entry.digest),
    name,
  );
  checkImageContents(a.image, derived, name);
}
