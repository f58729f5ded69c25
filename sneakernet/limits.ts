/**
 * Hard bounds on everything read from media. Media is hostile: nothing is read, parsed or allocated beyond these.
 * They are part of format v1 (docs/FORMAT.md): a writer must stay within them.
 */
export const LIMITS = {
  /** Bytes of one signature file (a Sigstore bundle holding the DSSE envelope and the statement). */
  signatureFileBytes: 8 * 1024 * 1024,
  /** Bytes of the statement (the DSSE payload). */
  statementBytes: 4 * 1024 * 1024,
  /** Bytes of one signer certificate file. */
  certificateFileBytes: 64 * 1024,
  /** Signature files in one bundle. */
  signatures: 16,
  /** Certificates in one bundle. */
  certificates: 64,
  /** Artifacts in one bundle. */
  artifacts: 1000,
  /** Volumes in one bundle. */
  volumes: 10_000,
  /** Tar entries in one volume. */
  entriesPerVolume: 10_000,
  /** One artifact: 1 TiB. */
  artifactBytes: 2 ** 40,
  /** One volume: 1 TiB. */
  volumeBytes: 2 ** 40,
  /** Nesting depth of any JSON document read from media. */
  jsonDepth: 16,
  /** Properties on one artifact, and the length of each key and value (Glance allows 255 for keys). */
  properties: 128,
  propertyKeyLength: 255,
  propertyValueLength: 65_535,
  /** Length of names, versions and identifiers. */
  nameLength: 255,
  /** Operations of one artifact's delta recipe (4.6); the statement's own bound (4 MiB) applies too. */
  deltaOps: 100_000,
  /** Entries directly in a bundle folder or media root that are read (the rest is refused or ignored). */
  directoryEntries: 20_000,
  /** OCI images (4.9): one manifest or index, as the distribution spec bounds it (4 MiB). */
  imageManifestBytes: 4 * 1024 * 1024,
  /** OCI images (4.9): one image config (8 MiB). */
  imageConfigBytes: 8 * 1024 * 1024,
  /** OCI images (4.9): nesting depth of a manifest, index or config. */
  imageJsonDepth: 16,
  /** OCI images (4.9): entries (child manifests) of one index. */
  imageIndexEntries: 256,
  /** OCI images (4.9): layers of one manifest. */
  imageLayers: 512,
  /** OCI images (4.9): blobs (manifests, configs, layers) one image needs. */
  imageBlobs: 4096,
  /** OCI images (4.9): platforms one image carries. */
  imagePlatforms: 64,
  /** Receipts (section 10): OCI blobs an import station lists as held. */
  receiptBlobs: 200_000,
} as const;
