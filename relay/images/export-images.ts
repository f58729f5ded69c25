/**
 * OCI images in an export (docs/FORMAT.md 4.9): which blobs of each image travel in this bundle. The top manifest
 * always does; any other blob travels once per bundle (the first image needing it carries it, later ones list it as
 * not carried) and not at all when the site's newest receipt lists it in `inventory.blobs`. The carried stream is the
 * carried blobs back to back; its size and digests are computed here (from the catalog's full-stream digests when
 * every blob travels, else by reading the carried blobs once).
 */
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { EcluseError } from '../../sneakernet/errors.js';
import { vendorEvidenceSchema } from '../../sneakernet/evidence.js';
import { platformKey } from '../../sneakernet/oci/platform.js';
import { subjectName, type Artifact, type OciImageArtifact } from '../../sneakernet/statement.js';
import type { PartsSource } from '../../sneakernet/volume-writer.js';
import { blobPath, type ArtifactRow, type RelayHome } from '../catalog.js';
import { imageOf } from './catalog-images.js';

const hexOf = (digest: string) => digest.slice('sha256:'.length);

/** What an export says of one image: the bytes it carries and what it leaves out. */
export interface ImageSummary {
  repository: string;
  tag: string;
  digest: string;
  platforms: string[];
  blobs: number;
  blobsCarried: number;
  bytesCarried: number;
  /** Blobs left out because the site's newest receipt says its registry holds them. */
  blobsHeldBySite: number;
  bytesHeldBySite: number;
  /** Blobs left out because an earlier image of this bundle carries them. */
  blobsCarriedEarlier: number;
}

/** The statement artifact of an image with every blob carried (what the catalog row's digests describe). */
export function wholeImageArtifact(home: RelayHome, row: ArtifactRow, evidence: boolean): OciImageArtifact {
  const img = imageOf(home.db, row.id);
  const e = evidence && row.evidence ? { evidence: vendorEvidenceSchema.parse(JSON.parse(row.evidence)) } : {};
  return {
    name: row.name,
    version: row.version,
    type: 'oci-image',
    size: row.size,
    sha256: row.sha256,
    sha512: row.sha512,
    properties: JSON.parse(row.properties) as Record<string, string>,
    provenance: { vendor: row.vendor, source: row.source, addedAt: row.added_at, ...e },
    image: {
      repository: img.repository,
      tag: img.tag,
      digest: img.digest,
      mediaType: img.mediaType,
      platforms: img.platforms,
      blobs: img.blobs.map((b) => ({ ...b, carried: true })),
    },
  };
}

async function streamDigests(home: RelayHome, a: OciImageArtifact): Promise<{ sha256: string; sha512: string }> {
  const s256 = createHash('sha256');
  const s512 = createHash('sha512');
  for (const b of a.image.blobs) {
    if (!b.carried) continue;
    for await (const chunk of fs.createReadStream(blobPath(home, hexOf(b.digest)), { highWaterMark: 1024 * 1024 })) {
      s256.update(chunk as Buffer);
      s512.update(chunk as Buffer);
    }
  }
  return { sha256: s256.digest('hex'), sha512: s512.digest('hex') };
}

/**
 * Marks, in every image of `artifacts` (in bundle order), the blobs that do not travel: those the site holds
 * (`siteBlobs`, hex) and those an earlier image carries. Returns the artifacts with their carried streams' sizes and
 * digests (VM images unchanged).
 */
export async function withImageBlobs(
  home: RelayHome,
  artifacts: Artifact[],
  siteBlobs: ReadonlySet<string>,
): Promise<Artifact[]> {
  const travelling = new Map<string, string>();
  const out: Artifact[] = [];
  for (const a of artifacts) {
    if (a.type !== 'oci-image') {
      out.push(a);
      continue;
    }
    const same = travelling.get(a.image.digest);
    if (same !== undefined) {
      throw new EcluseError(
        'E_USAGE',
        `${subjectName(a)} is the same image (${a.image.digest}) as ${same}: one bundle carries it once; remove one of them (ecluse relay remove ${subjectName(a)})`,
        { check: 'image-blobs' },
      );
    }
    const blobs = a.image.blobs.map((b, i) => ({
      ...b,
      carried: i === 0 || (!travelling.has(b.digest) && !siteBlobs.has(hexOf(b.digest))),
    }));
    for (const b of blobs) if (b.carried) travelling.set(b.digest, subjectName(a));
    let next: OciImageArtifact = { ...a, image: { ...a.image, blobs } };
    if (blobs.some((b) => !b.carried)) {
      const size = blobs.reduce((n, b) => (b.carried ? n + b.size : n), 0);
      next = { ...next, size, ...(await streamDigests(home, next)) };
    }
    out.push(next);
  }
  return out;
}

/** Per image of the bundle, what travels and what is left out (undefined for VM images). */
export function imageSummaries(artifacts: readonly Artifact[]): Array<ImageSummary | undefined> {
  const carriedBefore = new Set<string>();
  return artifacts.map((a) => {
    if (a.type !== 'oci-image') return undefined;
    const blobs = a.image.blobs;
    const earlier = blobs.filter((b) => !b.carried && carriedBefore.has(b.digest));
    const held = blobs.filter((b) => !b.carried && !carriedBefore.has(b.digest));
    for (const b of blobs) if (b.carried) carriedBefore.add(b.digest);
    return {
      repository: a.image.repository,
      tag: a.image.tag,
      digest: a.image.digest,
      platforms: a.image.platforms.map(platformKey),
      blobs: blobs.length,
      blobsCarried: blobs.filter((b) => b.carried).length,
      bytesCarried: a.size,
      blobsHeldBySite: held.length,
      bytesHeldBySite: held.reduce((n, b) => n + b.size, 0),
      blobsCarriedEarlier: earlier.length,
    };
  });
}

/** The volume writer's source of an image artifact: its carried blobs, back to back. */
export function imageSource(home: RelayHome, a: OciImageArtifact): PartsSource {
  return {
    parts: a.image.blobs.filter((b) => b.carried).map((b) => ({ file: blobPath(home, hexOf(b.digest)), size: b.size })),
  };
}

/** The first blob of an image the store lacks (or holds with another size), as a refusal; null when all are there. */
export async function missingImageBlob(home: RelayHome, row: ArtifactRow): Promise<EcluseError | null> {
  const img = imageOf(home.db, row.id);
  for (const b of img.blobs) {
    const st = await fs.promises.stat(blobPath(home, hexOf(b.digest))).catch(() => null);
    if (!st || st.size !== b.size) {
      return new EcluseError(
        'E_IO',
        `the stored blob ${b.digest} of ${row.name} ${row.version} is missing or damaged: add the image again (ecluse relay remove ${row.name}@${row.version}, then ecluse relay add-image ${row.source} --name ${row.name} --version ${row.version})`,
        { check: 'relay-store' },
      );
    }
  }
  return null;
}
