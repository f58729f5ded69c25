/**
 * The import station's admission policy (`ecluse policy apply FILE`): which artifacts are admitted, from which vendors,
 * of which types and disk formats, up to which size, signed by whom, and where each lands. The first rule whose
 * `artifacts` and `vendors` globs match an artifact decides for it; an artifact no rule matches is not admitted.
 * Without an applied policy, the built-in default admits every artifact (VM and OCI images), visibility public, no
 * downgrade. A rule that names no `types` admits VM images only, as before OCI images existed.
 */
import { z } from 'zod';
import { DISK_FORMATS } from '../../sneakernet/statement.js';

const glob = z.string().min(1).max(255);
/**
 * The artifact types a rule may admit (docs/FORMAT.md 4.1, 4.9, 4.10). `ecluse-package` (the station's own package)
 * is never in the built-in default: a site opts in to self-update by listing it.
 */
export const ARTIFACT_TYPES = ['vm-image', 'oci-image', 'ecluse-package'] as const;
const sizeText = z.union([z.number().int().positive(), z.string().regex(/^[0-9]+(\.[0-9]+)?\s*([KMGT]i?B?|B)?$/i)]);

export const ruleSchema = z.strictObject({
  /** Named in every refusal this rule makes. */
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  /** Globs on the artifact name. */
  artifacts: z.array(glob).min(1),
  /** Globs on the vendor the statement names, case-insensitive (an artifact without vendor matches only "*"). Default: any. */
  vendors: z.array(glob).min(1).default(['*']),
  /** Artifact types this rule admits: `vm-image` (the default, as before 4.9), `oci-image`, `ecluse-package`. */
  types: z.array(z.enum(ARTIFACT_TYPES)).min(1).default(['vm-image']),
  /** oci-image: globs on the image's repository path (`acme/*`, `library/debian`). Default: any. */
  repositories: z.array(glob).min(1).optional(),
  /** oci-image: globs on each platform carried, `os/architecture[/variant]` (`linux/*`, `linux/arm64/v8`); a glob
   * without a variant matches any variant. Every platform of the image must match one. Default: any. */
  platforms: z
    .array(
      z
        .string()
        .min(3)
        .max(200)
        .regex(
          /^[A-Za-z0-9_.*?-]+\/[A-Za-z0-9_.*?-]+(\/[A-Za-z0-9_.*?-]+)?$/,
          'os/architecture[/variant], globs allowed',
        ),
    )
    .min(1)
    .optional(),
  diskFormats: z.array(z.enum(DISK_FORMATS)).min(1).optional(),
  /** Largest artifact admitted: bytes, or 20G, 700M... (oci-image: the image's every blob, carried or held). */
  maxSize: sizeText.optional(),
  /** Signer names (certificate CN) who may vouch for these artifacts: this many of them must be among the bundle's
   * signers as the site's threshold requires. Default: any trusted signer. */
  signers: z.array(z.string().min(1).max(64)).min(1).optional(),
  visibility: z.enum(['public', 'private', 'shared', 'community']).default('public'),
  /** Vendor keys pinned inside (ASCII-armored OpenPGP public keys; PEM public keys for Sigstore and Glance image
   * signatures; PEM X.509 certificates for Glance image signatures, used only within their validity): when set, each
   * artifact this rule admits must carry vendor evidence verifying with one of them (verifier/vendor-evidence.ts). */
  vendorKeys: z
    .array(
      z
        .string()
        .min(1)
        .max(256 * 1024),
    )
    .min(1)
    .max(32)
    .optional(),
  /** Keep at most this many versions of each artifact name this rule admits (the newest, in version order): after
   * each import, and with `ecluse image prune`, older versions are retired (`ecluse image retire`), except one the
   * export station may still send a delta against. Default: keep every version. */
  keepNewest: z.number().int().min(1).max(10_000).optional(),
  /** Admit versions lower than the installed one (a deliberate downgrade). */
  allowDowngrade: z.boolean().default(false),
});

export const policySchema = z.strictObject({
  version: z.literal(1),
  /** Recompute md5 and sha512 over every byte instead of taking the statement's signed values (docs/FORMAT.md 4.8). */
  verifyAllDigests: z.boolean().optional(),
  /** Order of each export station's bundles (docs/FORMAT.md section 6, step 5d): `tolerant` (absent: the default)
   * accepts a bundle above a missing or refused one and names the gap; `strict` refuses it (E_SEQUENCE_GAP). */
  order: z.enum(['tolerant', 'strict']).optional(),
  rules: z.array(ruleSchema).min(1).max(1000),
});

export type PolicyRule = z.infer<typeof ruleSchema>;
export type Policy = z.infer<typeof policySchema>;

export const DEFAULT_POLICY: Policy = {
  version: 1,
  rules: [
    {
      name: 'default',
      artifacts: ['*'],
      vendors: ['*'],
      types: ['vm-image', 'oci-image'],
      visibility: 'public',
      allowDowngrade: false,
    },
  ],
};
