/**
 * The shared setup of the container-image journeys through real registries (test/e2e/oci-images.slow.test.ts,
 * test/e2e/oci-images-hostile.slow.test.ts): a fixture site (test/helpers/hostile.ts), Debian's docker-registry on
 * loopback twice (the vendor's, the site's; htpasswd basic auth), the two-platform image acme/app in versions 1.0 and
 * 2.0 built offline with umoci and pushed to the vendor's registry with skopeo, each with its cosign-format signature
 * under `sha256-<hex>.sig` made by a vendor whose public key is written to `<root>/vendor-cosign.pub`; and the steps
 * both files take (`relay add-image` from the vendor's registry, the site policy admitting the image).
 *
 * ociImagesWorld() registers the hooks (beforeAll: make all of it; afterAll: stop the registries, clean up); what it
 * makes is module state exported as live bindings (keys, vendorRegistry, siteRegistry, built, vendor, root), so a test
 * names it directly, as it did when both files were one. It is set only once beforeAll has run: use it inside a test
 * or a hook.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { hostileSite, type HostileSite } from './hostile.js';
import { makeCosignVendor, pushCosignSignature, type CosignVendor } from './oci/cosign.js';
import { buildVendorImage, pushToRegistry, type VendorImage } from './oci/image.js';
import { startRegistry, type Registry } from './oci/registry.js';
import { ecluseOk, tmpDir, type World } from './world.js';

export const REPO = 'acme/app';
const KiB = 1024;

// Set by ociImagesWorld()'s beforeAll, read by the tests (see above).
export let keys: HostileSite;
export let vendorRegistry: Registry;
/** Started only for a file that asks for it (`ociImagesWorld({ site: true })`). */
export let siteRegistry: Registry;
export let built: VendorImage;
export let vendor: CosignVendor;
export let root: string;

/**
 * Registers the hooks of a test file (beforeAll: the fixture site, the vendor's registry and, with `site`, the site's,
 * the image pushed and signed; afterAll: stop the registries, remove it all). Call it once, at the top level of the
 * file.
 */
export function ociImagesWorld({ site }: { site: boolean }): void {
  beforeAll(async () => {
    root = tmpDir('ecluse-oci-');
    keys = await hostileSite(path.join(root, 'keys'));
    vendorRegistry = await startRegistry(path.join(root, 'vendor-registry'), { username: 'vendor' });
    if (site) siteRegistry = await startRegistry(path.join(root, 'site-registry'), { username: 'ecluse' });
    built = await buildVendorImage(path.join(root, 'build'), {
      versions: ['1.0', '2.0'],
      baseBytes: 768 * KiB,
      appBytes: 96 * KiB,
    });
    vendor = makeCosignVendor();
    for (const v of built.versions) {
      await pushToRegistry(built, v.tag, vendorRegistry, REPO);
      const sig = await vendor.sign(v.index.digest, `${vendorRegistry.host}/${REPO}`);
      await pushCosignSignature(path.join(root, `sig-${v.tag}`), sig, vendorRegistry, REPO);
    }
    fs.writeFileSync(path.join(root, 'vendor-cosign.pub'), vendor.publicKeyPem);
  }, 300_000);

  afterAll(async () => {
    await vendorRegistry?.stop();
    if (site) await siteRegistry?.stop();
    keys?.cleanup();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });
}

/** `ecluse relay add-image docker://VENDOR/acme/app:TAG` with the vendor registry's auth file. */
export async function addImage(w: World, tag: string, extra: string[] = []) {
  return ecluseOk(
    [
      'relay',
      'add-image',
      `docker://${vendorRegistry.host}/${REPO}:${tag}`,
      '--name',
      'app',
      '--version',
      tag,
      '--authfile',
      vendorRegistry.authFile,
      ...extra,
      '--json',
    ],
    { home: w.outside, timeoutMs: 300_000 },
  );
}

/** The site policy: images of acme/* admitted (platforms as given), the vendor's cosign key pinned when asked. */
export function imagePolicy(o: { platforms?: string[]; vendorKey?: boolean } = {}): string {
  const lines = ['version: 1', 'rules:', '  - name: acme-images', '    artifacts: [app]', '    types: [oci-image]'];
  if (o.platforms) lines.push(`    platforms: [${o.platforms.join(', ')}]`);
  if (o.vendorKey) {
    lines.push(
      '    vendorKeys:',
      '      - |',
      ...vendor.publicKeyPem
        .trimEnd()
        .split('\n')
        .map((l) => `        ${l}`),
    );
  }
  lines.push('  - name: rest', "    artifacts: ['*']", '');
  return lines.join('\n');
}

export async function applyPolicy(home: string, policy: string, file: string): Promise<void> {
  fs.writeFileSync(file, policy);
  await ecluseOk(['policy', 'apply', file, '--json'], { home });
}
