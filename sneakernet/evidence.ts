/**
 * Vendor evidence (format v1, docs/FORMAT.md 4.5): what an artifact's provenance may carry to prove that its vendor
 * published it, as the statement schema reads it. Checked at the export station when a feed fetches the artifact, and
 * again at the import station against the vendor keys its policy pins.
 */
import { z } from 'zod';
import { LIMITS } from './limits.js';
import { base64, sha256Hex } from './schema-parts.js';

/** Largest vendor checksum file (or clear-signed document) carried as evidence: 256 KiB. */
export const EVIDENCE_CHECKSUMS_BYTES = 256 * 1024;
/** Largest detached OpenPGP signature or Sigstore bundle carried as evidence: 64 KiB. */
export const EVIDENCE_SIGNATURE_BYTES = 64 * 1024;
const b64Chars = (bytes: number) => Math.ceil(bytes / 3) * 4;

/** Largest cosign simple-signing payload carried as evidence: 64 KiB. */
export const EVIDENCE_COSIGN_PAYLOAD_BYTES = 64 * 1024;
/** What cosign's simple-signing payload says it is (`critical.type`). */
export const COSIGN_SIGNATURE_TYPE = 'cosign container image signature';

/** Glance image-signature hash methods (`img_signature_hash_method`, as cursive names them). */
export const GLANCE_HASH_METHODS = ['SHA-224', 'SHA-256', 'SHA-384', 'SHA-512'] as const;
/** Glance image-signature key types (`img_signature_key_type`, as cursive names them). */
export const GLANCE_KEY_TYPES = [
  'RSA-PSS',
  'DSA',
  'ECC_SECT571K1',
  'ECC_SECT409K1',
  'ECC_SECT571R1',
  'ECC_SECT409R1',
  'ECC_SECP384R1',
  'ECC_SECP521R1',
] as const;
/** Largest Glance image signature carried as evidence (decoded): 8 KiB (an RSA-16384 signature is 2 KiB). */
export const EVIDENCE_GLANCE_SIGNATURE_BYTES = 8 * 1024;
/** A Glance image id: a UUID, any case (the reference Glance accepts and returns lowercase). */
export const GLANCE_IMAGE_ID = /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/;

/**
 * The vendor's own proof that it published an artifact (optional; docs/FORMAT.md 4.5), kept by the export station
 * when it fetched the artifact from a feed and re-verified by the import station against vendor keys pinned inside.
 */
export const vendorEvidenceSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    /** A checksum file (SHA256SUMS, SHA512SUMS, CHECKSUM) signed with OpenPGP, listing the artifact. */
    kind: z.literal('openpgp-checksums'),
    /** Fingerprint (uppercase hex) of the vendor key that made the signature, as the export station saw it. */
    keyFingerprint: z.string().regex(/^(?:[0-9A-F]{40}|[0-9A-F]{64})$/, 'an OpenPGP fingerprint in uppercase hex'),
    /** The artifact's file name in the checksum file. */
    file: z.string().min(1).max(LIMITS.nameLength),
    algorithm: z.enum(['sha256', 'sha512']),
    /** The checksum file as published (for a clear-signed file: the whole clear-signed document). */
    checksums: base64(b64Chars(EVIDENCE_CHECKSUMS_BYTES)),
    /** The detached signature (binary or ASCII-armored) over `checksums`; null when `checksums` is clear-signed. */
    signature: base64(b64Chars(EVIDENCE_SIGNATURE_BYTES)).nullable(),
  }),
  z.strictObject({
    /** A Sigstore bundle by a vendor key: a message signature over the artifact, or a DSSE in-toto statement naming it. */
    kind: z.literal('sigstore'),
    /** SHA-256 of the vendor public key's SubjectPublicKeyInfo (DER), as the export station saw it. */
    keyId: sha256Hex,
    /** The Sigstore bundle (JSON) as published. */
    bundle: base64(b64Chars(EVIDENCE_SIGNATURE_BYTES)),
  }),
  z.strictObject({
    /** An image read from an outside Glance (a staging cloud), with its Glance image signature when it had one. */
    kind: z.literal('glance-image'),
    /** The Glance endpoint the export station read it from (informative). */
    endpoint: z.string().min(1).max(2048),
    /** The image's id and name in that Glance (informative). */
    imageId: z.string().regex(GLANCE_IMAGE_ID, 'a UUID'),
    imageName: z.string().max(LIMITS.nameLength).nullable(),
    /** `os_hash_algo` / `os_hash_value` and `checksum` (md5) as that Glance published them; null when it did not. */
    osHashAlgo: z
      .string()
      .regex(/^[a-z0-9_]{1,32}$/, 'a hashlib name')
      .nullable(),
    osHashValue: z
      .string()
      .regex(/^(?:[0-9a-f]{2}){16,128}$/, 'lowercase hex')
      .nullable(),
    checksum: z
      .string()
      .regex(/^[0-9a-f]{32}$/, '32 lowercase hex')
      .nullable(),
    /** The image's Glance signature (`img_signature*` properties); null: provenance only, no vendor signature. */
    signature: z
      .strictObject({
        /** `img_signature_certificate_uuid`: the certificate's secret in the staging cloud's key manager. */
        certificateUuid: z.string().regex(GLANCE_IMAGE_ID, 'a UUID'),
        /** SHA-256 of the SPKI (DER) of the pinned certificate's key the export station verified with (informative). */
        keyId: sha256Hex,
        hashMethod: z.enum(GLANCE_HASH_METHODS),
        keyType: z.enum(GLANCE_KEY_TYPES),
        /** `img_signature`: base64 signature over the image bytes. */
        value: base64(b64Chars(EVIDENCE_GLANCE_SIGNATURE_BYTES)),
      })
      .nullable(),
  }),
  z.strictObject({
    /**
     * A cosign signature of an OCI image (4.9): the simple-signing payload naming the image's manifest digest, and a
     * Sigstore bundle whose message signature is over the payload bytes, by a vendor key.
     */
    kind: z.literal('cosign'),
    /** The simple-signing JSON as signed (`critical.image["docker-manifest-digest"]` names the image's digest). */
    payload: base64(b64Chars(EVIDENCE_COSIGN_PAYLOAD_BYTES)),
    /** The Sigstore bundle (JSON) with the message signature over `payload`. */
    bundle: base64(b64Chars(EVIDENCE_SIGNATURE_BYTES)),
  }),
]);
export type VendorEvidence = z.infer<typeof vendorEvidenceSchema>;
