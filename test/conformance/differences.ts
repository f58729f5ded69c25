/**
 * Every DELIBERATE difference between `ecluse serve` and the reference Glance (25.1.0, Debian `glance-api`, no
 * Keystone) that the conformance suite (glance.slow.test.ts) tolerates, each with the reason. Anything not listed
 * here must match: status codes, the headers clients read, field names, types and nullability, pagination links,
 * error shapes. The suite reads this list; nothing else may relax a comparison.
 */
export interface Difference {
  /** Stable id, used by the suite to look the difference up. */
  id: string;
  /** Where it shows. */
  where: string;
  /** What differs. */
  what: string;
  /** Why it is on purpose. */
  why: string;
  /**
   * Where Tempest (tempest.slow.test.ts) meets it: the `[image-feature-enabled]` flag in test/conformance/tempest-features
   * that switches its tests off, and the skipped tests (test id or `setUpClass (Class)`) it explains.
   */
  tempest?: { flag: string; skips: RegExp };
}

export const DELIBERATE_DIFFERENCES: readonly Difference[] = [
  {
    id: 'bundle-images-read-only',
    where: 'PATCH/DELETE/PUT file/tags/actions/members on an image whose origin is a bundle',
    what: '403 with a message saying the image came through a verified bundle (Glance would allow the change)',
    why: "an image's bytes and properties are what m-of-n signers approved; changing them through the API would break provenance (site setting glance_bundle_images=writable lifts it; a DELETE then retires the image, audited and listed in the next receipt, as ecluse image retire does)",
  },
  {
    id: 'no-stores-field',
    where: 'image records (show, list, PATCH, create) and /v2/schemas/image',
    what: 'no `stores` attribute on images and in the schema',
    why: 'glanceclient 4.1 turns every cached schema property into a CLI option and `stores` clashes with its own --stores (every `glance` command then dies, against the real Glance too); there is one embedded store',
  },
  {
    id: 'store-id',
    where: '/v2/info/stores, OpenStack-image-store-ids',
    what: 'one store `local` (with a description) instead of the configured `fs`',
    why: "the store is the import station's own; its id is not configurable",
  },
  {
    id: 'no-import-methods',
    where: '/v2/info/import value, OpenStack-image-import-methods header value',
    what: 'an empty list instead of glance-direct, web-download, copy-image',
    why: 'interoperable import is not offered: web-download, copy-image and glance-download would reach a network or another cloud the air-gapped side must not, and the data path is PUT /file (what openstackclient, glanceclient and openstacksdk use by default)',
    tempest: {
      flag: 'import_image=false',
      skips:
        /(ImportImagesTest|ImportCopyImagesTest|MultiStoresImportImagesTest|ImportImagesNegativeTest)\b.*(import is not available|import method)/,
    },
  },
  {
    id: 'tag-order',
    where: '`tags` of image records',
    what: 'tags keep their first-seen order; Glance returns them in set order (unspecified)',
    why: 'stable output; clients treat tags as a set (the suite compares them sorted)',
  },
  {
    id: 'schema-error-detail',
    where: '400 bodies for values that do not match the image schema',
    what: 'the first line ("Provided object does not match schema \'image\': <value> is not ...") matches; the jsonschema dump after it is shorter',
    why: 'the dump is Python-internal (dict reprs of the schema); clients show the message, none parses it',
  },
  {
    id: 'no-content-type-on-204',
    where: '204 responses (upload, tags, actions, delete)',
    what: 'no Content-Type header (Glance sends text/html; charset=UTF-8 with an empty body)',
    why: 'there is no body; no client reads it',
  },
  {
    id: 'repeated-params-in-links',
    where: '`first` and `next` of GET /v2/images with a repeated parameter (tag=a&tag=b)',
    what: 'every repeated value is kept; Glance keeps only the last one (`first` = ?tag=b)',
    why: "Glance's links silently change the filter: following its `next` for tag=a AND tag=b pages through tag=b only; écluse's next page is the same query",
  },
  {
    id: 'identity-projects',
    where: 'GET /projects/{id}',
    what: 'answers {"project": {"id": ID, "name": ID, ...}} (the real Glance answers 300 and `openstack image add project` fails against it with KeyError: \'projects\')',
    why: 'openstackclient resolves the project through the identity API at the same endpoint under --os-auth-type none; there is no Keystone here and project ids are opaque',
  },
  {
    id: 'no-locations',
    where: 'image locations (PATCH /locations, direct_url, show_multiple_locations)',
    what: 'images have no locations; adding one is refused',
    why: 'a location points the image at bytes outside the store that nobody verified; the store serves only what it verified',
    tempest: {
      flag: 'manage_locations=false',
      skips: /ImageLocationsTest\b.*show_multiple_locations is not available/,
    },
  },
  {
    id: 'no-cache-api',
    where: '/v2/cache (the image cache API)',
    what: 'no cache API (404)',
    why: 'images are served from the local store itself: there is no slower backend to cache in front of',
    tempest: { flag: 'image_caching_enabled=false', skips: /ImageCachingTest\b.*not configured with glance caching/ },
  },
  {
    id: 'auth-beyond-loopback',
    where: 'any request from a non-loopback address without a known X-Auth-Token',
    what: '401 (the reference peer runs without Keystone and serves anyone)',
    why: 'an import station must not serve its store to the network without a token (`ecluse token create`)',
  },
];

/**
 * What Tempest skips against the real Glance here too (../shared/peers/tempest-glance.sh, its header): the remote
 * import and delete tests need a second Glance (`image_remote`).
 */
export const TEMPEST_SKIPS_OF_REAL_GLANCE: readonly { skips: RegExp; why: string }[] = [
  {
    skips: /\.ImportImagesTest\.test_remote_(import|delete)\b/,
    why: 'needs a second image service (image_remote), which the real Glance here lacks too',
  },
];

export function difference(id: string): Difference {
  const d = DELIBERATE_DIFFERENCES.find((x) => x.id === id);
  if (!d) throw new Error(`no deliberate difference "${id}" in test/conformance/differences.ts`);
  return d;
}
