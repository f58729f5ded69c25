/**
 * The checks the format and trust layers (sneakernet/ and keys/) name when they refuse: one typed list, as the
 * import's own checks are in verifier/checks.ts. An error raised here carries `context.check: checkId('...')`, so a
 * misspelt or invented name does not compile, and a test can say which check fired.
 *
 * Each id gives its step of docs/FORMAT.md section 6 when it has one (the verifier's IMPORT_CHECKS maps it to that
 * same step: test/sneakernet/check-ids.test.ts holds them together), or null for a check outside the steps of an
 * import (key files and ceremonies, operator input, trust anchors at install, JSON bounds shared by several files).
 */
export const CHECK_IDS = {
  // finding the bundle on the media (sneakernet/bundle-files.ts, media-set.ts)
  media: '1',
  'bundle-choice': null,
  layout: '2',
  'media-set': '2',
  // the statement (sneakernet/statement.ts)
  format: null,
  'statement-schema': '4a',
  'statement-consistency': '4b',
  // the volumes (sneakernet/volume-reader.ts); a disk that fills while a file is written (sneakernet/direct-file.ts)
  volumes: '6',
  space: '6c',
  'media-file': '7b',
  'volume-size': '7c',
  'volume-structure': '7d',
  'entry-size': '7e',
  'volume-digest': '7i',
  // signatures and the signers' trust (keys/verify.ts, envelope.ts, revocation.ts, root-rotation.ts)
  'signature-format': '3b',
  signature: '3d',
  'signer-trust': '3e',
  threshold: '3e',
  revocation: '3r',
  revocations: '3r',
  'root-rotation': '3r',
  // vendors' own signatures (keys/vendor.ts, glance-signature.ts)
  'vendor-key': '7v',
  'vendor-signature': '7v',
  'vendor-digest': '7v',
  // outside an import: key files, ceremonies, trust anchors, operator files
  'trust-anchors': null,
  key: null,
  keydir: null,
  'key-encryption': null,
  passphrase: null,
  'passphrase-length': null,
  'signer-name': null,
  'root-subject': null,
  usage: null,
  'input-file': null,
  'artifact-name': null,
  // OCI images and their signatures (sneakernet/oci/, keys/cosign-signature.ts)
  'image-blob-count': '7o',
  'image-blob-digest': '7o',
  'image-blob-list': '7o',
  'image-blob-missing': '5k',
  'image-blob-size': '7o',
  'image-config': '7o',
  'image-manifest': '7o',
  'image-platforms': '7o',
  platform: null,
  // a station's home and database (sneakernet/station-home.ts, stored-rows.ts)
  'station-home': null,
  database: null,
  'catalog-row': null,
  // the export station's stored copy of an artifact is not the one its catalog row describes (sneakernet/volume-writer.ts,
  // relay/artifact-check.ts)
  'stored-artifact': null,
} as const satisfies Record<string, string | null>;

export type CheckId = keyof typeof CHECK_IDS;

/** The id of a check, checked by the compiler: `{ check: checkId('volume-digest'), volume }`. */
export function checkId<C extends CheckId>(id: C): C {
  return id;
}

export function isCheckId(name: unknown): name is CheckId {
  return typeof name === 'string' && Object.hasOwn(CHECK_IDS, name);
}
