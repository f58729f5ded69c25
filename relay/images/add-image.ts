/**
 * `ecluse relay add-image REF --name NAME --version VERSION`: an OCI image from a vendor's registry (or an OCI layout
 * or archive) into the export station's catalog. skopeo fetches it, digests preserved, into a private folder under the
 * store; it is parsed and bounded exactly as the import station will (sneakernet/oci/), the platforms asked for are
 * selected (the index itself is kept verbatim: its digest is the vendor's), every blob is checked and stored once,
 * the vendor's cosign signature is read and checked against the pinned keys, and the image is recorded.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { EcluseError } from '../../sneakernet/errors.js';
import { platformKey, type Platform } from '../../sneakernet/oci/platform.js';
import { repositorySchema, tagSchema } from '../../sneakernet/oci/statement-image.js';
import { vmImageArtifactSchema } from '../../sneakernet/statement.js';
import type { ArtifactRow, RelayHome } from '../catalog.js';
import { artifactNamed } from '../artifacts.js';
import { recordEvent } from '../events.js';
import { imageOf, recordImage, type CatalogImage } from './catalog-images.js';
import { readFetched, storeBlobs } from './fetched.js';
import { defaultRepository, parseImageReference, skopeoSource } from './reference.js';
import { fetchImage } from './fetch-image.js';
import type { SkopeoOptions } from './skopeo.js';
import { checkSignature, readSignatureFile, readSignatureTag, type CheckedSignature } from './vendor-signature.js';

export interface AddImageOptions {
  reference: string;
  name: string;
  version: string;
  platforms: Platform[];
  /** The repository path served inside (default: the registry path, or the layout's name). */
  repository?: string | undefined;
  /** The tag served inside (default: the reference's tag, else the version). */
  tag?: string | undefined;
  properties: Record<string, string>;
  vendor: string | null;
  authfile?: string | undefined;
  insecureRegistry?: boolean | undefined;
  vendorSignature?: string | undefined;
  /** Pinned vendor public keys (PEM): the signature must verify with one of them. */
  vendorKeys: string[];
  /** The vendor feed it came from (`relay fetch`), recorded with it. */
  feed?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface AddImageResult {
  created: boolean;
  artifact: ArtifactRow;
  image: Omit<CatalogImage, 'artifactId'>;
  /** Blobs stored by this add (the others were in the store already, from other images). */
  blobsStored: number;
  signature: { checked: boolean; keyId: string | null; from: string } | null;
}

function usage(message: string, check: string): EcluseError {
  return new EcluseError('E_USAGE', message, { check });
}

/**
 * The catalog's image of this name and version when it is this very image (same digest and platforms): adding it
 * again is a no-op. Another image (or a VM image) under the name and version is refused before anything is stored.
 */
function sameVersion(
  home: RelayHome,
  name: string,
  version: string,
  digest: string,
  platforms: Platform[],
): { artifact: ArtifactRow; image: CatalogImage } | null {
  const row = artifactNamed(home.db, name, version);
  if (!row) return null;
  const image = row.type === 'oci-image' ? imageOf(home.db, row.id) : null;
  if (image && image.digest === digest && JSON.stringify(image.platforms) === JSON.stringify(platforms)) {
    return { artifact: row, image };
  }
  throw new EcluseError(
    'E_INPUT',
    `${name} ${version} is already in the catalog${image ? ` as the image ${image.digest} (${image.platforms.map(platformKey).join(', ') || 'single manifest'})` : ' as a VM image'}: give this image a new --version`,
    { check: 'catalog' },
  );
}

export async function addImage(home: RelayHome, o: AddImageOptions): Promise<AddImageResult> {
  const ref = parseImageReference(o.reference);
  const probe = vmImageArtifactSchema.pick({ name: true, version: true, properties: true }).safeParse({
    name: o.name,
    version: o.version,
    properties: o.properties,
  });
  if (!probe.success) {
    const issue = probe.error.issues[0];
    throw usage(`invalid ${issue?.path.join('.') || 'input'}: ${issue?.message ?? 'invalid'}`, 'input');
  }
  const repository = o.repository ?? defaultRepository(ref);
  if (!repositorySchema.safeParse(repository).success) {
    throw usage(`--repository ${repository} is not a repository path (lowercase, like acme/app)`, 'repository');
  }
  const tag = o.tag ?? ref.tag ?? o.version;
  if (!tagSchema.safeParse(tag).success) {
    throw usage(`the tag ${tag} is not a valid tag: give one with --tag (letters, digits, . _ -)`, 'tag');
  }
  if (ref.transport === 'docker' && o.authfile && !fs.existsSync(o.authfile)) {
    throw new EcluseError('E_NOT_FOUND', `--authfile ${o.authfile} does not exist`);
  }
  const keys = o.vendorKeys;
  const given = o.vendorSignature ? await readSignatureFile(o.vendorSignature) : null;
  const skopeo: SkopeoOptions = { authfile: o.authfile, insecureRegistry: o.insecureRegistry, signal: o.signal };
  const source = skopeoSource(ref);
  // Private, on the store's filesystem (blobs are renamed in), removed whatever happens.
  const scratch = path.join(home.blobs, `.incoming-image-${randomBytes(8).toString('hex')}`);
  await fs.promises.mkdir(scratch, { mode: 0o700 });
  try {
    const dir = path.join(scratch, 'image');
    await fetchImage(source, ref, dir, o.platforms, skopeo);
    const read = readFetched(dir, o.platforms, source);
    if (ref.transport === 'docker' && ref.digest && ref.digest !== read.digest) {
      throw new EcluseError(
        'E_VENDOR_DIGEST',
        `${source} was fetched as ${read.digest}, not the digest asked for: the registry did not preserve it`,
        { check: 'vendor-digest' },
      );
    }
    let signature: CheckedSignature | null = null;
    const material = given ?? (await readSignatureTag(ref, read.digest, scratch, skopeo));
    if (material) signature = checkSignature(material, keys, read.digest, `the vendor signature of ${source}`);
    else if (keys.length > 0) {
      throw new EcluseError(
        'E_VENDOR_UNTRUSTED',
        `${source} has no cosign signature (no ${read.digest.replace(':', '-')}.sig tag) and vendor keys are pinned: ask the vendor to sign it, or give one with --vendor-signature FILE`,
        { check: 'vendor-key' },
      );
    }
    const known = sameVersion(home, o.name, o.version, read.digest, read.contents.platforms);
    if (known) {
      return {
        created: false,
        artifact: known.artifact,
        image: {
          reference: known.image.reference,
          repository: known.image.repository,
          tag: known.image.tag,
          digest: known.image.digest,
          mediaType: known.image.mediaType,
          platforms: known.image.platforms,
          blobs: known.image.blobs,
        },
        blobsStored: 0,
        signature: signature
          ? { checked: signature.keyId !== null, keyId: signature.keyId, from: signature.from }
          : null,
      };
    }
    const fetched = await storeBlobs(home, dir, read, o.signal);
    const platforms = fetched.contents.platforms;
    const blobs = fetched.contents.blobs;
    const r = recordImage(home.db, {
      name: o.name,
      version: o.version,
      reference: source,
      repository,
      tag,
      digest: fetched.digest,
      mediaType: fetched.mediaType,
      platforms,
      blobs,
      size: fetched.size,
      sha256: fetched.sha256,
      sha512: fetched.sha512,
      properties: o.properties,
      vendor: o.vendor,
      evidence: signature ? JSON.stringify(signature.evidence) : null,
      feed: o.feed ?? null,
    });
    if (r.created) {
      recordEvent(home.db, 'image.added', {
        subject: `${o.name}@${o.version}`,
        details: {
          reference: source,
          digest: fetched.digest,
          platforms: platforms.map(platformKey),
          blobs: blobs.length,
          blobsStored: fetched.stored,
          signature: signature ? { keyId: signature.keyId, from: signature.from } : null,
        },
      });
    }
    return {
      created: r.created,
      artifact: r.artifact,
      image: {
        reference: source,
        repository,
        tag,
        digest: fetched.digest,
        mediaType: fetched.mediaType,
        platforms,
        blobs,
      },
      blobsStored: fetched.stored,
      signature: signature ? { checked: signature.keyId !== null, keyId: signature.keyId, from: signature.from } : null,
    };
  } finally {
    await fs.promises.rm(scratch, { recursive: true, force: true });
  }
}
