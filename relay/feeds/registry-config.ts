/**
 * The `registry` feed kind (issue 18): container images of one repository of a vendor's registry (or an OCI layout
 * folder), every tag matching `match` whose version `versionPattern` reads from the tag. `relay fetch` takes each new
 * version in as `relay add-image` does, the vendor's cosign signature checked against the keys pinned here.
 */
import { z } from 'zod';
import { platformSchema } from '../../sneakernet/oci/platform.js';
import { repositorySchema } from '../../sneakernet/oci/statement-image.js';
import { checkVersionPattern, commonFeedFields } from './common.js';

/** Default version from a tag: `1.4.2`, `v1.4.2` → `1.4.2` (a tag such as `latest` has none and is skipped). */
export const DEFAULT_TAG_VERSION_PATTERN = '^v?([0-9][0-9A-Za-z._+~-]*)$';

export const registryFeedSchema = z
  .strictObject({
    ...commonFeedFields,
    kind: z.literal('registry'),
    type: z.literal('oci-image').default('oci-image'),
    versionPattern: z.string().min(1).max(512).default(DEFAULT_TAG_VERSION_PATTERN),
    /** `docker://HOST[:PORT]/REPO` (no tag) or `oci:DIR` (a layout folder). */
    url: z
      .string({ error: 'a registry feed names its repository (url: docker://HOST[:PORT]/REPO or oci:DIR)' })
      .regex(
        /^(docker:\/\/[^:@\s]+(:[0-9]{1,5})?\/[^:@\s]+|oci:[^:]+)$/,
        'docker://HOST[:PORT]/REPO or oci:DIR, without a tag',
      ),
    /** A glob on tags: which are releases of this product. */
    match: z.string().min(1).max(255).default('*'),
    /** The platforms carried (default: all). */
    platforms: z.array(platformSchema).max(64).default([]),
    /** The repository served inside (default: the registry path, or the layout's name). */
    repository: repositorySchema.optional(),
    /** A containers auth file (read at each fetch, never copied). */
    authfile: z.string().min(1).max(4096).optional(),
    insecureRegistry: z.boolean().default(false),
    /** The vendor's cosign public keys (PEM files or inline PEM): pinned when the feed is declared. */
    publicKeys: z.array(z.string().min(1)).min(1, 'a registry feed pins the vendor cosign public key(s)'),
    properties: z.record(z.string(), z.string()).default({}),
  })
  .superRefine((f, ctx) => checkVersionPattern(f.versionPattern, ctx));

export type RegistryFeedConfig = z.output<typeof registryFeedSchema>;
