/**
 * A vendor's multi-platform image, built offline with Debian's `umoci` from generated root filesystems (no base image,
 * no network): per platform (linux/amd64, linux/arm64) a base layer shared by every version and one application layer
 * per version; per version an OCI image index joining the platforms' manifests, tagged in the OCI layout. Pushed to
 * a registry with `skopeo copy --multi-arch all --preserve-digests` (so the registry holds the very bytes built here).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { tool } from './tools.js';
import type { Registry } from './registry.js';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface PlatformManifest {
  platform: { os: string; architecture: string };
  descriptor: Descriptor;
  config: Descriptor;
  layers: Descriptor[];
}

export interface ImageVersion {
  /** The tag in the OCI layout (and, by default, in the registry). */
  tag: string;
  /** The image index: the vendor's manifest digest, what every pull must give back. */
  index: Descriptor;
  manifests: PlatformManifest[];
  /** Every content-addressed object of this version: the index, then per platform its manifest, config, layers. */
  blobs: Descriptor[];
  /** The blobs that no earlier version of this image has. */
  newBlobs: Descriptor[];
}

export interface VendorImage {
  /** The OCI image layout umoci built (`oci:<layout>:<tag>` for skopeo). */
  layout: string;
  platforms: string[];
  versions: ImageVersion[];
  version(tag: string): ImageVersion;
  /** The bytes of a blob of the layout. */
  blob(digest: string): Buffer;
}

export interface BuildOptions {
  /** Version tags, built in order; each shares every platform's base layer. */
  versions?: string[];
  platforms?: string[];
  /** Bytes of random (incompressible) data in each platform's base layer. */
  baseBytes?: number;
  /** Bytes of random data in each version's application layer. */
  appBytes?: number;
}

function digestOf(b: Buffer): string {
  return `sha256:${crypto.createHash('sha256').update(b).digest('hex')}`;
}

function readBlob(layout: string, digest: string): Buffer {
  return fs.readFileSync(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)));
}

function refDescriptor(layout: string, ref: string): Descriptor {
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
  const d = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref);
  if (!d) throw new Error(`no ${ref} in ${layout}`);
  return d;
}

/** Writes a blob into the layout (content-addressed) and returns its descriptor. */
export function putBlob(layout: string, mediaType: string, bytes: Buffer): Descriptor {
  const digest = digestOf(bytes);
  fs.writeFileSync(path.join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)), bytes);
  return { mediaType, digest, size: bytes.length };
}

/** Points `ref` of the layout's index.json at `d` (replacing what it named before). */
export function tagInLayout(layout: string, ref: string, d: Descriptor): void {
  const file = path.join(layout, 'index.json');
  const index = JSON.parse(fs.readFileSync(file, 'utf8')) as { manifests: Descriptor[] };
  index.manifests = index.manifests.filter((m) => m.annotations?.['org.opencontainers.image.ref.name'] !== ref);
  index.manifests.push({
    mediaType: d.mediaType,
    digest: d.digest,
    size: d.size,
    annotations: { 'org.opencontainers.image.ref.name': ref },
  });
  fs.writeFileSync(file, JSON.stringify(index));
}

/** Builds the image in the new folder `dir` (umoci: init, new, config, insert; the indexes written here). */
export async function buildVendorImage(dir: string, o: BuildOptions = {}): Promise<VendorImage> {
  const versions = o.versions ?? ['1.0'];
  const platforms = o.platforms ?? ['amd64', 'arm64'];
  const layout = path.join(dir, 'layout');
  fs.mkdirSync(dir, { recursive: true });
  await tool('umoci', ['init', '--layout', layout]);
  for (const arch of platforms) {
    const ref = `${layout}:${arch}-base`;
    await tool('umoci', ['new', '--image', ref]);
    await tool('umoci', ['config', '--image', ref, '--os', 'linux', '--architecture', arch, '--author', 'vendor']);
    const rootfs = path.join(dir, `rootfs-${arch}`);
    fs.mkdirSync(path.join(rootfs, 'usr', 'lib', 'vendor'), { recursive: true });
    fs.mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
    fs.writeFileSync(path.join(rootfs, 'etc', 'os-release'), `ID=vendor-os\nVERSION_ID=1\nARCH=${arch}\n`);
    fs.writeFileSync(
      path.join(rootfs, 'usr', 'lib', 'vendor', 'base.bin'),
      crypto.randomBytes(o.baseBytes ?? 256 * 1024),
    );
    await tool('umoci', ['insert', '--image', ref, rootfs, '/']);
  }
  const built: ImageVersion[] = [];
  const seen = new Set<string>();
  for (const tag of versions) {
    const manifests: PlatformManifest[] = [];
    for (const arch of platforms) {
      const ref = `${arch}-${tag}`;
      await tool('umoci', ['tag', '--image', `${layout}:${arch}-base`, ref]);
      const app = path.join(dir, `app-${arch}-${tag}`);
      fs.mkdirSync(app, { recursive: true });
      fs.writeFileSync(path.join(app, 'VERSION'), `${tag}\n`);
      fs.writeFileSync(path.join(app, 'app.bin'), crypto.randomBytes(o.appBytes ?? 64 * 1024));
      await tool('umoci', ['insert', '--image', `${layout}:${ref}`, app, '/opt/app']);
      await tool('umoci', ['config', '--image', `${layout}:${ref}`, '--config.cmd', '/opt/app/app.bin']);
      const descriptor = refDescriptor(layout, ref);
      const manifest = JSON.parse(readBlob(layout, descriptor.digest).toString('utf8')) as {
        config: Descriptor;
        layers: Descriptor[];
      };
      manifests.push({
        platform: { os: 'linux', architecture: arch },
        descriptor: { mediaType: descriptor.mediaType, digest: descriptor.digest, size: descriptor.size },
        config: manifest.config,
        layers: manifest.layers,
      });
    }
    const indexBytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: manifests.map((m) => ({ ...m.descriptor, platform: m.platform })),
        annotations: { 'org.opencontainers.image.version': tag },
      }),
    );
    const index = putBlob(layout, OCI_INDEX, indexBytes);
    tagInLayout(layout, tag, index);
    const blobs = [index, ...manifests.flatMap((m) => [m.descriptor, m.config, ...m.layers])];
    const unique = blobs.filter((b, i) => blobs.findIndex((x) => x.digest === b.digest) === i);
    const newBlobs = unique.filter((b) => !seen.has(b.digest));
    for (const b of unique) seen.add(b.digest);
    built.push({ tag, index, manifests, blobs: unique, newBlobs });
  }
  return {
    layout,
    platforms,
    versions: built,
    version(tag) {
      const v = built.find((b) => b.tag === tag);
      if (!v) throw new Error(`no version ${tag} was built`);
      return v;
    },
    blob: (digest) => readBlob(layout, digest),
  };
}

/** `skopeo copy --multi-arch all --preserve-digests oci:LAYOUT:TAG docker://REGISTRY/REPO:DESTTAG` with its auth file. */
export async function pushToRegistry(
  image: { layout: string },
  tag: string,
  registry: Registry,
  repository: string,
  destTag = tag,
): Promise<void> {
  await tool('skopeo', [
    'copy',
    '--quiet',
    '--multi-arch',
    'all',
    '--preserve-digests',
    '--dest-authfile',
    registry.authFile,
    '--dest-tls-verify=false',
    `oci:${image.layout}:${tag}`,
    `docker://${registry.host}/${repository}:${destTag}`,
  ]);
}
