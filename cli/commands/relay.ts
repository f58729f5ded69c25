/** `ecluse relay add` and `ecluse export`: the export station. */
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { readKeyDirRevocations } from '../../keys/revocation.js';
import { loadTrustAnchors } from '../../keys/trust.js';
import { loadSigner } from '../../keys/signer.js';
import { resolvePassphrase } from '../../keys/passphrase.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { parseByteSize } from '../../sneakernet/volume-plan.js';
import { addArtifact } from '../../relay/add.js';
import { openRelayHome } from '../../relay/catalog.js';
import { exportBundle } from '../../relay/export.js';
import { sniffDiskFormat } from '../../relay/disk-format.js';
import { parseDuration } from '../duration.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';
import { progressBar } from '../progress.js';

/**
 * The newest revocation list of the signers' key folders (KEYDIR/trust/, beside KEYDIR/signers/), verified against
 * that folder's root. Refuses to sign with a key the list revokes: the import station would refuse the bundle.
 */
function newestRevocations(dirs: string[], signers: Array<{ name: string; keyId: string }>): Buffer | null {
  let best: { version: number; bytes: Buffer } | null = null;
  for (const dir of dirs) {
    const keyDir = path.resolve(dir, '..', '..');
    if (!fs.existsSync(path.join(keyDir, 'trust', 'trust.json'))) continue;
    const found = readKeyDirRevocations(keyDir, loadTrustAnchors(path.join(keyDir, 'trust')));
    if (!found) continue;
    for (const s of signers) {
      const r = found.list.revoked.find((x) => x.keyId === s.keyId);
      if (r) throw new EcluseError('E_REVOKED', `signer ${s.name} was revoked on ${r.revokedAt}; the import station would refuse its signature`);
    }
    if (!best || found.list.version > best.version) best = { version: found.list.version, bytes: found.bytes };
  }
  return best?.bytes ?? null;
}

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

export function registerRelay(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const relay = program.command('relay').description('the export station catalog');
  relay
    .command('add')
    .description('add a VM image (or another artifact) to the export station catalog, to go in the next export')
    .argument('<FILE>', 'the image file')
    .requiredOption('--name <NAME>', 'image name at the site (Glance name)')
    .requiredOption('--version <VERSION>', 'version of this release (e.g. 1.2.0, 2026.11.21)')
    .option('--disk-format <FORMAT>', 'raw, qcow2, vmdk, vhdx, iso, ... (default: detected from the file)')
    .option('--container-format <FORMAT>', 'bare, ovf, ova, ...', 'bare')
    .option('--vendor <VENDOR>', 'who published it')
    .option('--property <K=V>', 'a Glance property for the image (repeatable)', collect, [])
    .addHelpText(
      'after',
      '\nExample:\n  ecluse relay add debian-13-genericcloud-amd64.qcow2 --name debian-13 --version 20261101 --property os_distro=debian\n',
    )
    .action(
      async (
        file: string,
        o: {
          name: string;
          version: string;
          diskFormat?: string;
          containerFormat: string;
          vendor?: string;
          property: string[];
        },
      ) => {
        await report(ctx(), async () => {
          const h = openRelayHome(resolveHome(home()));
          const bar = progressBar('adding', !ctx().json);
          try {
            const diskFormat = o.diskFormat ?? (await sniffDiskFormat(file));
            const r = await addArtifact(h, {
              file,
              name: o.name,
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

  program
    .command('export')
    .description('write everything added since the last export as one signed bundle onto media, split into volumes')
    .option(
      '--to <MEDIA_DIR>',
      'where the media is mounted (or any folder standing in for it); repeat to spread the volumes over several media',
      collect,
      [],
    )
    .requiredOption('--site <SITE_ID>', 'the destination site; the import station refuses bundles for other sites')
    .requiredOption('--signer <DIR>', 'a signer folder (KEYDIR/signers/NAME); repeat for m-of-n', collect, [])
    .option('--media-size <SIZE>', 'largest volume to write, e.g. 4G, 700M', '4G')
    .option('--expires <DURATION>', 'how long the bundle may be imported, e.g. 30d, 12h', '30d')
    .option('--all', 'export the whole catalog again, not only what is new')
    .addHelpText(
      'after',
      '\nSigner keys are unlocked with ECLUSE_PASSPHRASE or a terminal prompt.\n\nExample:\n' +
        '  ecluse export --to /media/usb0 --site paris-1 --signer keys/signers/alice --signer keys/signers/bob --media-size 32G\n',
    )
    .action(
      async (o: {
        to: string[];
        site: string;
        signer: string[];
        mediaSize: string;
        expires: string;
        all?: boolean;
      }) => {
        await report(ctx(), async () => {
          if (o.to.length === 0) throw new EcluseError('E_USAGE', "required option '--to <MEDIA_DIR>' not specified");
          const mediaBytes = parseByteSize(o.mediaSize);
          const expiresInMs = parseDuration(o.expires);
          for (const to of o.to) if (!fs.existsSync(to)) fs.mkdirSync(to, { recursive: true });
          const signers = [];
          for (const dir of o.signer) {
            signers.push(
              await loadSigner(dir, () => resolvePassphrase({ noPassphrase: false, purpose: `signer ${dir}` })),
            );
          }
          const revocations = newestRevocations(o.signer, signers);
          const h = openRelayHome(resolveHome(home()));
          const bar = progressBar('writing', !ctx().json);
          try {
            const r = await exportBundle(h, {
              revocations,
              media: o.to.length === 1 ? (o.to[0] as string) : o.to,
              site: o.site,
              signers,
              mediaBytes,
              expiresInMs,
              all: o.all ?? false,
              onProgress: (d, t) => bar.update(d, t),
            });
            bar.stop();
            return {
              json: {
                bundle: {
                  id: r.bundleId,
                  station: r.station,
                  sequence: r.sequence,
                  site: r.site,
                  created: r.created,
                  expires: r.expires,
                  path: r.path,
                  signers: r.signers,
                  bytes: r.bytes,
                  volumes: r.volumes,
                  media: r.media,
                },
                artifacts: r.artifacts,
              },
              human: [
                `bundle ${r.station} #${r.sequence} (${r.bundleId}) for site ${r.site} written to ${r.path}`,
                ...(r.media.length > 1
                  ? r.media.map((m, k) => `  medium ${k + 1} of ${r.media.length}: ${m.path} (${m.volumes.join(', ')})`)
                  : []),
                `${r.artifacts.length} artifact(s), ${r.volumes.length} volume(s), ${formatBytes(r.bytes)}, signed by ${r.signers.join(', ')}, expires ${r.expires}`,
              ],
            };
          } finally {
            bar.stop();
            h.db.close();
          }
        });
      },
    );
}
