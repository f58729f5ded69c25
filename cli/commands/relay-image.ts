/** `ecluse relay add-image`: an OCI image from a registry, OCI layout or archive into the export station's catalog. */
import type { Command } from 'commander';
import { resolveHome } from '../home.js';
import { interruptible } from '../interrupt.js';
import { formatBytes, report, type CommandContext } from '../output.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

interface AddImageFlags {
  name: string;
  version: string;
  platform: string[];
  repository?: string;
  tag?: string;
  authfile?: string;
  insecureRegistry?: boolean;
  vendorSignature?: string;
  vendorKey: string[];
  vendor?: string;
  property: string[];
}

export function registerAddImage(
  relay: Command,
  ctx: () => CommandContext,
  home: () => string | undefined,
  parseProperties: (list: string[]) => Record<string, string>,
): void {
  relay
    .command('add-image')
    .description(
      "add an OCI container image (an index with the platforms asked for, or one manifest) to the catalog, fetched with skopeo, the vendor's digest preserved",
    )
    .argument(
      '<REF>',
      'docker://HOST[:PORT]/REPO:TAG (or @sha256:HEX), oci:DIR[:TAG] or oci-archive:FILE[:TAG], as skopeo writes them',
    )
    .requiredOption('--name <NAME>', 'the artifact name (its policy and rollback key inside), e.g. app')
    .requiredOption(
      '--version <VERSION>',
      'version of this release (e.g. 1.4.0): inside, only newer versions are taken',
    )
    .option('--platform <OS/ARCH[/VARIANT]>', 'carry this platform of an index (repeatable; default: all)', collect, [])
    .option('--repository <PATH>', 'the repository served inside (default: the registry path, e.g. acme/app)')
    .option('--tag <TAG>', "the tag served inside (default: the reference's tag, else the version)")
    .option('--authfile <FILE>', 'registry credentials in the containers auth file format (as podman and skopeo use)')
    .option('--insecure-registry', 'allow plain HTTP to a registry that is not on loopback (loopback always may)')
    .option(
      '--vendor-signature <FILE>',
      'the cosign signature as {"payload": base64 simple-signing JSON, "bundle": Sigstore bundle} (default: the sha256-<hex>.sig tag beside the image, when present)',
    )
    .option(
      '--vendor-key <PEM>',
      'a vendor public key the signature must verify with (repeatable); then it is required',
      collect,
      [],
    )
    .option('--vendor <VENDOR>', 'who published it (free text)')
    .option('--property <K=V>', 'a property recorded with the image (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
Example:
  ecluse relay add-image docker://registry.vendor.example/acme/app:1.4 --name app --version 1.4 \\
      --platform linux/amd64 --platform linux/arm64 --authfile ~/.config/containers/auth.json \\
      --vendor-key acme-cosign.pub

Served inside as 127.0.0.1:5000/acme/app:1.4 (ecluse serve --registry-listen) with the vendor's digest. Blobs are
stored once for every image that shares them, and an export carries only those the site's last receipt lacks.
`,
    )
    .action(async (reference: string, o: AddImageFlags) => {
      await report(ctx(), async () => {
        // Loaded when the command runs (cli/main.ts): `relay add` and `export` do not pay for skopeo and cosign.
        const { openRelayHome } = await import('../../relay/catalog.js');
        const { addImage } = await import('../../relay/images/add-image.js');
        const { readVendorKeys } = await import('../../relay/images/vendor-signature.js');
        const { parsePlatform, platformKey } = await import('../../sneakernet/oci/platform.js');
        const h = openRelayHome(resolveHome(home()));
        try {
          const r = await interruptible(
            { what: 'add-image', next: 'nothing was added; run the command again' },
            (signal) =>
              addImage(h, {
                reference,
                name: o.name.normalize('NFC'),
                version: o.version,
                platforms: o.platform.map(parsePlatform),
                repository: o.repository,
                tag: o.tag,
                properties: parseProperties(o.property),
                vendor: o.vendor ?? null,
                authfile: o.authfile,
                insecureRegistry: o.insecureRegistry,
                vendorSignature: o.vendorSignature,
                vendorKeys: readVendorKeys(o.vendorKey),
                signal,
              }),
          );
          const img = r.image;
          const platforms = img.platforms.map(platformKey).join(', ') || 'single manifest';
          const sig = r.signature
            ? r.signature.checked
              ? `vendor signature verified (key ${r.signature.keyId?.slice(0, 16) ?? ''}…)`
              : 'vendor signature kept unchecked (no --vendor-key pinned; checked inside if the policy pins one)'
            : 'no vendor signature';
          return {
            json: {
              created: r.created,
              artifact: {
                name: r.artifact.name,
                version: r.artifact.version,
                type: 'oci-image',
                size: r.artifact.size,
                sha256: r.artifact.sha256,
              },
              image: {
                reference: img.reference,
                repository: img.repository,
                tag: img.tag,
                digest: img.digest,
                mediaType: img.mediaType,
                platforms: img.platforms,
                blobs: img.blobs.length,
                bytes: r.artifact.size,
              },
              blobsStored: r.blobsStored,
              signature: r.signature,
            },
            human: [
              `${r.created ? 'added' : 'already present:'} ${r.artifact.name} ${r.artifact.version}: ${img.repository}:${img.tag} ${img.digest} (${platforms})`,
              `  ${img.blobs.length} blobs, ${formatBytes(r.artifact.size)}; ${r.blobsStored} new in the store; ${sig}`,
            ],
          };
        } finally {
          h.db.close();
        }
      });
    });
}
