/**
 * Where things live on the media (format v1). A media root may hold several bundles; each bundle is a folder
 *
 *   <media>/ecluse/bundles/<bundle-id>/
 *       signatures/<key-id>.sigstore.json   one Sigstore bundle (DSSE envelope over the statement) per signer
 *       certificates/<key-id>.pem           the signer's X.509 certificate, issued by the site root
 *       volumes/vol-0001.tar ...            tar volumes holding the artifacts under content-addressed names
 *       trust/revocations.sigstore.json     optional: the site's newest revocation list, signed by the site root
 *       trust/root-<v>.<key-id>.sigstore.json  optional: root documents, a pair per root rotation (FORMAT.md 8.2)
 *
 * `<key-id>` is the lowercase hex SHA-256 of the signer's SubjectPublicKeyInfo (DER). Anything outside `ecluse/` is
 * not ours and is ignored (a vfat stick has `System Volume Information`); anything unexpected inside a bundle folder
 * is refused.
 */
import path from 'node:path';

export const MEDIA_ROOT_DIR = 'ecluse';
export const BUNDLES_DIR = 'bundles';
export const SIGNATURES_DIR = 'signatures';
export const CERTIFICATES_DIR = 'certificates';
export const VOLUMES_DIR = 'volumes';
/**
 * Trust updates travelling with the bundle (FORMAT.md 8.2): `trust/revocations.sigstore.json` (a revocation list signed
 * by the root) and root documents (ROOT_DOCUMENT_PATTERN); nothing else.
 */
export const TRUST_DIR = 'trust';
export const TRUST_FILES = ['revocations.sigstore.json'] as const;
/** Root documents announcing root version N (one file per signature: by root N-1 and by root N). */
export const ROOT_DOCUMENT_PATTERN = /^root-([0-9]{1,6})\.([0-9a-f]{64})\.sigstore\.json$/;
export const SIGNATURE_SUFFIX = '.sigstore.json';
export const CERTIFICATE_SUFFIX = '.pem';

export const KEY_ID_PATTERN = /^[0-9a-f]{64}$/;
export const BUNDLE_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function bundlesDir(media: string): string {
  return path.join(media, MEDIA_ROOT_DIR, BUNDLES_DIR);
}

export interface BundlePaths {
  root: string;
  trust: string;
  signatures: string;
  certificates: string;
  volumes: string;
}

export function bundlePaths(media: string, bundleId: string): BundlePaths {
  const root = path.join(bundlesDir(media), bundleId);
  return {
    root,
    trust: path.join(root, TRUST_DIR),
    signatures: path.join(root, SIGNATURES_DIR),
    certificates: path.join(root, CERTIFICATES_DIR),
    volumes: path.join(root, VOLUMES_DIR),
  };
}
