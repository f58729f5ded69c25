/** `ecluse relay add` and `ecluse export`: the export station. */
import type { Command } from 'commander';
import fs from 'node:fs';
import path from 'node:path';
import { readKeyDirRevocations } from '../../keys/revocation.js';
import { keyDirRootFiles } from '../../keys/root-rotation.js';
import { loadTrustAnchors } from '../../keys/trust.js';
import { loadSigner } from '../../keys/signer.js';
import { PASSPHRASE_ENV, resolvePassphrase, signerPassphraseEnv } from '../../keys/passphrase.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { unreadableFile } from '../../sneakernet/input-file.js';
import { parseByteSize } from '../../sneakernet/volume-plan.js';
import { addArtifact } from '../../relay/add.js';
import { openRelayHome } from '../../relay/catalog.js';
import { exportBundle, planExport, resendSource } from '../../relay/export.js';
import { importReceipts, trustReceiptKey } from '../../relay/receipts/receipts.js';
import type { Statement } from '../../sneakernet/statement.js';
import { sniffDiskFormat } from '../../relay/disk-format.js';
import { parseDuration } from '../duration.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';
import { progressBar } from '../progress.js';
import { registerFeeds } from './feed.js';

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
      if (r)
        throw new EcluseError(
          'E_REVOKED',
          `signer ${s.name} was revoked on ${r.revokedAt}; the import station would refuse its signature`,
        );
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
          throw unreadableFile(keyFile, e, 'receipt key file');
        }
        const h = openRelayHome(resolveHome(home()));
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
        const h = openRelayHome(resolveHome(home()));
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
    .description('add a VM image (or another artifact) to the export station catalog, to go in the next export')
    .argument('<FILE>', 'the image file')
    .requiredOption(
      '--name <NAME>',
      'image name at the site (the Glance name): letters of any script, digits, spaces and punctuation, at most 255',
    )
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
    .option('--site <SITE_ID>', 'the destination site; the import station refuses bundles for other sites')
    .option('--signer <DIR>', 'a signer folder (KEYDIR/signers/NAME); repeat for m-of-n', collect, [])
    .option('--media-size <SIZE>', 'largest volume to write, e.g. 4G, 700M', '4G')
    .option('--expires <DURATION>', 'how long the bundle may be imported, e.g. 30d, 12h', '30d')
    .option('--all', 'export the whole catalog again, not only what is new')
    .option('--plan', 'show what would be written, on how many media and the free space each needs; write nothing')
    .option(
      '--resend <N>',
      'write bundle N again exactly as it was (same statement, chains as the original), signed again',
    )
    .option(
      '--replace <N>',
      'replace bundle N (lost, expired, or refused inside) and any written after it: a new bundle N chained onto N-1, carrying what the site lacks now',
    )
    .option('--force', 'build on a bundle the import station has not acknowledged in a receipt yet')
    .option('--no-evidence', 'leave the vendor evidence out of the statement (import stations older than format 4.5)')
    .option(
      '--no-delta',
      'send every image whole, even where the import station holds an earlier release (import stations older than format 4.6)',
    )
    .addHelpText(
      'after',
      '\nSigner keys are unlocked with ECLUSE_PASSPHRASE or a terminal prompt.\n\n' +
        'A bundle lost, expired, or refused inside (the receipt says why): ecluse export --replace N writes a new\n' +
        'bundle N in its place. --resend N writes the very same bundle again (same statement).\n\n' +
        'Deltas: once the import station sends receipts (ecluse relay receipt import), an image whose earlier release\n' +
        'the site holds travels as a delta: only the content-defined chunks the site lacks, rebuilt and verified\n' +
        'against the full sha256/sha512 inside. The summary and --plan say how many bytes that saves.\n\nExample:\n' +
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
        plan?: boolean;
        resend?: string;
        replace?: string;
        force?: boolean;
        evidence: boolean;
        delta: boolean;
      }) => {
        await report<object>(ctx(), async () => {
          const mediaBytes = parseByteSize(o.mediaSize);
          const replace = o.replace === undefined ? undefined : Number(o.replace);
          if (replace !== undefined && (!Number.isSafeInteger(replace) || replace < 1))
            throw new EcluseError('E_USAGE', '--replace wants a bundle sequence number');
          if (replace !== undefined && o.resend !== undefined)
            throw new EcluseError('E_USAGE', '--resend and --replace do not go together');
          if (o.plan) {
            if (!o.site) throw new EcluseError('E_USAGE', "required option '--site <SITE_ID>' not specified");
            const h = openRelayHome(resolveHome(home()));
            try {
              const p = await planExport(h, {
                site: o.site,
                mediaBytes,
                all: o.all ?? false,
                signers: Math.max(o.signer.length, 1),
                noEvidence: !o.evidence,
                noDelta: !o.delta,
                ...(replace !== undefined ? { replace } : {}),
              });
              return {
                json: { plan: p },
                human: [
                  `bundle #${p.sequence} for site ${o.site} (${p.basis}): ${p.artifacts.length} artifact(s), ${p.volumes.length} volume(s), ${formatBytes(p.bytes)}`,
                  ...p.artifacts.map(
                    (a) =>
                      `  ${a.name} ${a.version} (${formatBytes(a.size)})${a.evidence ? ', vendor evidence' : ''}${a.delta ? `, delta against ${a.delta.base}: ${formatBytes(a.delta.carried)} carried` : ''}`,
                  ),
                  ...(p.bytesSaved > 0 ? [`deltas save ${formatBytes(p.bytesSaved)}`] : []),
                  `${p.mediaNeeded} medium/media of ${formatBytes(p.mediaSize)}${p.fits ? '' : ' (a volume and its bundle files do not fit on one medium of that size: give a smaller --media-size)'}:`,
                  ...p.media.map(
                    (m) =>
                      `  medium ${m.medium}: ${m.volumes.join(', ')} - needs ${formatBytes(m.freeSpaceNeeded)} free`,
                  ),
                  'nothing was written',
                ],
              };
            } finally {
              h.db.close();
            }
          }
          if (o.to.length === 0) throw new EcluseError('E_USAGE', "required option '--to <MEDIA_DIR>' not specified");
          if (o.signer.length === 0) throw new EcluseError('E_USAGE', "required option '--signer <DIR>' not specified");
          let resend: { sequence: number; statement: Statement; payload: Buffer } | undefined;
          let site = o.site;
          if (o.resend !== undefined) {
            const n = Number(o.resend);
            if (!Number.isSafeInteger(n) || n < 1)
              throw new EcluseError('E_USAGE', '--resend wants a bundle sequence number');
            const hh = openRelayHome(resolveHome(home()));
            try {
              const src = resendSource(hh, n);
              if (site && site !== src.site)
                throw new EcluseError('E_USAGE', `bundle #${n} was made for site ${src.site}, not ${site}`);
              site = src.site;
              resend = { sequence: n, statement: src.statement, payload: src.payload };
            } finally {
              hh.db.close();
            }
          }
          if (!site) throw new EcluseError('E_USAGE', "required option '--site <SITE_ID>' not specified");
          const expiresInMs = parseDuration(o.expires);
          for (const to of o.to) if (!fs.existsSync(to)) fs.mkdirSync(to, { recursive: true });
          const signers = [];
          for (const dir of o.signer) {
            signers.push(
              await loadSigner(dir, () =>
                resolvePassphrase({
                  noPassphrase: false,
                  purpose: `signer ${dir}`,
                  env: [signerPassphraseEnv(path.basename(path.resolve(dir))), PASSPHRASE_ENV],
                }),
              ),
            );
          }
          const revocations = newestRevocations(o.signer, signers);
          const rootDocuments =
            o.signer.length > 0 ? keyDirRootFiles(path.resolve(o.signer[0] as string, '..', '..')) : [];
          const h = openRelayHome(resolveHome(home()));
          const bar = progressBar('writing', !ctx().json);
          try {
            const r = await exportBundle(h, {
              revocations,
              rootDocuments,
              media: o.to.length === 1 ? (o.to[0] as string) : o.to,
              site,
              resend,
              force: o.force ?? false,
              noEvidence: !o.evidence,
              noDelta: !o.delta,
              ...(replace !== undefined ? { replace } : {}),
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
                bytesSaved: r.bytesSaved,
                replaced: r.replaced,
              },
              human: [
                `bundle ${r.station} #${r.sequence} (${r.bundleId}) for site ${r.site} ${resend ? 'resent' : 'written'} to ${r.path}`,
                ...(r.media.length > 1
                  ? r.media.map((m, k) => `  medium ${k + 1} of ${r.media.length}: ${m.path} (${m.volumes.join(', ')})`)
                  : []),
                `${r.artifacts.length} artifact(s), ${r.volumes.length} volume(s), ${formatBytes(r.bytes)}, signed by ${r.signers.join(', ')}, expires ${r.expires}`,
                ...r.artifacts.flatMap((a) =>
                  a.delta
                    ? [
                        `  ${a.name} ${a.version}: delta against ${a.delta.base}, ${formatBytes(a.delta.carried)} of ${formatBytes(a.size)} carried (${formatBytes(a.delta.saved)} saved)`,
                      ]
                    : [],
                ),
                ...(r.bytesSaved > 0 ? [`deltas saved ${formatBytes(r.bytesSaved)}`] : []),
                ...r.replaced.map((x) => `replaces bundle #${x.sequence} (${x.bundleId}), now superseded`),
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
