/**
 * The media types of OCI images (docs/FORMAT.md 4.9): which documents écluse reads as manifests and indexes, and which
 * blobs it carries as configs and layers. Anything else is refused (E_IMAGE_MANIFEST): an unknown media type is a
 * document écluse cannot check, so it does not cross.
 */

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** What an image's top document (`image.mediaType`) may be: an index or list of manifests, or one manifest. */
export const IMAGE_MEDIA_TYPES = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST] as const;
export type ImageMediaType = (typeof IMAGE_MEDIA_TYPES)[number];

export const INDEX_MEDIA_TYPES: readonly string[] = [OCI_INDEX, DOCKER_MANIFEST_LIST];
export const MANIFEST_MEDIA_TYPES: readonly string[] = [OCI_MANIFEST, DOCKER_MANIFEST];

/** Image configs. */
export const CONFIG_MEDIA_TYPES: readonly string[] = [
  'application/vnd.oci.image.config.v1+json',
  'application/vnd.docker.container.image.v1+json',
];

/**
 * Layers écluse carries: OCI and Docker filesystem layers, and the in-toto attestation layers BuildKit adds to an index
 * (`unknown/unknown` entries). Non-distributable ("foreign") layers are refused: their bytes are not in the registry.
 */
export const LAYER_MEDIA_TYPES: readonly string[] = [
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.in-toto+json',
];

export function isIndexMediaType(t: string): boolean {
  return INDEX_MEDIA_TYPES.includes(t);
}

export function isManifestMediaType(t: string): boolean {
  return MANIFEST_MEDIA_TYPES.includes(t);
}

/** A syntactically valid media type (RFC 6838 `type/subtype`, optional `+suffix`), as the statement lists them. */
export const MEDIA_TYPE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
