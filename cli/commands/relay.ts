/** `ecluse relay add` and `ecluse export`: the export station. */
import type { Command } from 'commander';
import fs from 'node:fs';
import { EcluseError } from '../../sneakernet/errors.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';
import { registerFeeds } from './feed.js';
import { registerExport } from './export.js';
import { registerCatalog } from './relay-catalog.js';
import { registerAddImage } from './relay-image.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function parseProperties(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new EcluseError('E_USAGE', `--property wants KEY=VALUE, got "${kv}"`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/**
 * The modules a command runs are loaded when it runs, not when the command tree is built (cli/main.ts): `relay add`
 * does not pay for receipts, feeds, OCI images and signing, nor `export` for the feeds.
 */
const openHome = async (dir: string | undefined) =>
  (await import('../../relay/catalog.js')).openRelayHome(resolveHome(dir));

export function registerRelay(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const relay = program.command('relay').description('the export station catalog');
  registerFeeds(relay, ctx, home);
  const receipt = relay.command('receipt').description('import receipts: what the import station has, signed by it');
  receipt
    .command('trust')
    .description("pin a site's receipt key (the public key `ecluse receipt key` prints at the import station)")
    .argument('<KEYFILE>', 'the receipt public key (PEM)')
    .requiredOption('--site <SITE_ID>', 'the site whose import station holds that key')
    .option('--replace', 'replace the key pinned for that site')
    .addHelpText(
      'after',
      '\nExample:\n  ecluse --home /var/lib/ecluse-relay relay receipt trust /media/usb0/receipt.pub --site paris-1\n',
    )
    .action(async (keyFile: string, o: { site: string; replace?: boolean }) => {
      await report(ctx(), async () => {
        let pem: string;
        try {
          pem = await fs.promises.readFile(keyFile, 'utf8');
        } catch (e) {
          throw (await import('../../sneakernet/input-file.js')).unreadableFile(keyFile, e, 'receipt key file');
        }
        const { trustReceiptKey } = await import('../../relay/receipts/receipts.js');
        const h = await openHome(home());
        try {
          const r = trustReceiptKey(h.db, o.site, pem, o.replace ?? false);
          return { json: r, human: `receipt key ${r.keyId.slice(0, 16)}… pinned for site ${r.site}` };
        } finally {
          h.db.close();
        }
      });
    });
  receipt
    .command('import')
    .description('take the receipts on the media: verified against the pinned key of their site, newer than the last')
    .argument('<MEDIA_DIR>')
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse-relay relay receipt import /media/usb0\n')
    .action(async (media: string) => {
      await report(ctx(), async () => {
        const { importReceipts } = await import('../../relay/receipts/receipts.js');
        const h = await openHome(home());
        try {
          const taken = await importReceipts(h, media);
          return {
            json: { receipts: taken },
            human: taken.map(
              (t) =>
                `receipt ${t.number} of site ${t.site} ${t.status}: acknowledges #${t.acknowledged} of ${h.station}, ${t.inventory} artifact(s) inside, ${t.refused} refusal(s) listed`,
            ),
          };
        } finally {
          h.db.close();
        }
      });
    });
  relay
    .command('add')
    .description("add a VM image, or écluse's own package (--type ecluse-package), to the catalog for the next export")
    .argument('<FILE>', 'the image file, or the ecluse_<version>_<arch>.deb')
    .option(
      '--name <NAME>',
      'image name at the site (the Glance name): letters of any script, digits, spaces and punctuation, at most 255 (a package: read from it)',
    )
    .option('--version <VERSION>', 'version of this release, e.g. 1.2.0, 2026.11.21 (a package: read from it)')
    .option(
      '--type <TYPE>',
      "vm-image, or ecluse-package for écluse's own Debian package (docs/FORMAT.md 4.10)",
      'vm-image',
    )
    .option('--disk-format <FORMAT>', 'raw, qcow2, vmdk, vhdx, iso, ... (default: detected from the file)')
    .option('--container-format <FORMAT>', 'bare, ovf, ova, ...', 'bare')
    .option('--vendor <VENDOR>', 'who published it')
    .option('--property <K=V>', 'a Glance property for the image (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
Examples:
  ecluse relay add debian-13-genericcloud-amd64.qcow2 --name debian-13 --version 20261101 --property os_distro=debian
  ecluse relay add dist-pkg/ecluse_0.2.0_amd64.deb --type ecluse-package     # the station updates itself (FORMAT 4.10)
`,
    )
    .action(
      async (
        file: string,
        o: {
          name?: string;
          version?: string;
          type: string;
          diskFormat?: string;
          containerFormat: string;
          vendor?: string;
          property: string[];
        },
      ) => {
        await report<object>(ctx(), async () => {
          if (o.type !== 'vm-image' && o.type !== 'ecluse-package') {
            throw new EcluseError(
              'E_USAGE',
              `--type ${o.type} is not one of vm-image, ecluse-package (container images: ecluse relay add-image)`,
            );
          }
          if (o.type === 'ecluse-package') {
            if (o.diskFormat !== undefined || o.property.length > 0 || o.containerFormat !== 'bare') {
              throw new EcluseError(
                'E_USAGE',
                '--disk-format, --container-format and --property are for VM images, not for a package',
              );
            }
            return addPackageCommand(file, { name: o.name, version: o.version, vendor: o.vendor });
          }
          if (o.name === undefined)
            throw new EcluseError(
              'E_USAGE',
              "required option '--name <NAME>' not specified (see: ecluse relay add --help)",
            );
          if (o.version === undefined) {
            throw new EcluseError(
              'E_USAGE',
              "required option '--version <VERSION>' not specified (see: ecluse relay add --help)",
            );
          }
          const [{ addArtifact }, { sniffDiskFormat }, { progressBar }] = await Promise.all([
            import('../../relay/add.js'),
            import('../../relay/disk-format.js'),
            import('../progress.js'),
          ]);
          const h = await openHome(home());
          const bar = progressBar('adding', !ctx().json);
          try {
            const diskFormat = o.diskFormat ?? (await sniffDiskFormat(file));
            const r = await addArtifact(h, {
              file,
              // As typed, in NFC: "débian" typed with a combining accent is the same name as the precomposed one.
              name: o.name.normalize('NFC'),
              version: o.version,
              diskFormat,
              containerFormat: o.containerFormat,
              properties: parseProperties(o.property),
              vendor: o.vendor ?? null,
              onProgress: (d, t) => bar.update(d, t),
            });
            bar.stop();
            const a = r.artifact;
            return {
              json: {
                created: r.created,
                artifact: {
                  name: a.name,
                  version: a.version,
                  type: a.type,
                  size: a.size,
                  sha256: a.sha256,
                  sha512: a.sha512,
                  diskFormat: a.disk_format,
                  containerFormat: a.container_format,
                },
              },
              human: `${r.created ? 'added' : 'already present:'} ${a.name} ${a.version} (${formatBytes(a.size)}, ${a.disk_format}, sha256 ${a.sha256.slice(0, 16)}…)`,
            };
          } finally {
            bar.stop();
            h.db.close();
          }
        });
      },
    );

  async function addPackageCommand(file: string, o: { name?: string; version?: string; vendor?: string }) {
    const [{ addPackage }, { progressBar }] = await Promise.all([
      import('../../relay/add-package.js'),
      import('../progress.js'),
    ]);
    const h = await openHome(home());
    const bar = progressBar('adding', !ctx().json);
    try {
      const r = await addPackage(h, {
        file,
        ...(o.name !== undefined ? { name: o.name } : {}),
        ...(o.version !== undefined ? { version: o.version } : {}),
        vendor: o.vendor ?? null,
        onProgress: (d, t) => bar.update(d, t),
      });
      bar.stop();
      const a = r.artifact;
      return {
        json: {
          created: r.created,
          artifact: {
            name: a.name,
            version: a.version,
            type: a.type,
            size: a.size,
            sha256: a.sha256,
            sha512: a.sha512,
            package: r.package,
          },
        },
        human: `${r.created ? 'added' : 'already present:'} écluse package ${a.name} ${a.version} for ${r.package.arch}${r.package.node ? ` (nodejs ${r.package.node})` : ''} (${formatBytes(a.size)}, sha256 ${a.sha256.slice(0, 16)}…)`,
      };
    } finally {
      bar.stop();
      h.db.close();
    }
  }

  registerAddImage(relay, ctx, home, parseProperties);
  registerCatalog(relay, ctx, home);
  registerExport(program, ctx, home);
}
