/**
 * `ecluse export`: plan, then write (relay/export-plan.ts, relay/write-bundle.ts). `--plan` prints the very plan
 * `export` would execute, including why it would refuse.
 */
import type { Command } from 'commander';
import path from 'node:path';
import { EcluseError, exitCodeFor } from '../../sneakernet/errors.js';
import { parseByteSize } from '../../sneakernet/volume-plan.js';
import type { ExportPlan, ExportRequest, ExportResult } from '../../relay/export.js';
import type { ImageSummary } from '../../relay/images/export-images.js';
import { removeHeldFolders } from '../../relay/interrupt.js';
import { interruptedError } from '../interrupt.js';
import { parseDuration } from '../duration.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function sequenceOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new EcluseError('E_USAGE', `${flag} wants a bundle sequence number`);
  return n;
}

interface ExportFlags {
  to: string[];
  site?: string;
  signer: string[];
  mediaSize: string;
  expires: string;
  all?: boolean;
  plan?: boolean;
  resend?: string;
  replace?: string;
  force?: boolean;
  includeRefused?: boolean;
  evidence: boolean;
  delta: boolean;
  md5: boolean;
  chunks: boolean;
  verifyAllDigests?: boolean;
}

function requestOf(
  o: ExportFlags,
  signerFiles: Pick<ExportRequest, 'certificateBytes' | 'trustFileBytes'>,
): ExportRequest {
  const resend = sequenceOption('--resend', o.resend);
  const replace = sequenceOption('--replace', o.replace);
  if (resend !== undefined && replace !== undefined) {
    throw new EcluseError('E_USAGE', '--resend and --replace do not go together');
  }
  if (resend !== undefined && !o.md5) {
    throw new EcluseError(
      'E_USAGE',
      `--no-md5 does not go with --resend: a resend writes bundle #${resend}'s signed statement as it was; to write it anew without md5: ecluse export --replace ${resend} --site SITE --no-md5 --to MEDIA`,
    );
  }
  if (resend !== undefined && !o.chunks) {
    throw new EcluseError(
      'E_USAGE',
      `--no-chunks does not go with --resend: a resend writes bundle #${resend}'s signed statement as it was; to write it anew without chunk lists: ecluse export --replace ${resend} --site SITE --no-chunks --to MEDIA`,
    );
  }
  let mode: ExportRequest['mode'] = { kind: 'fresh' };
  if (resend !== undefined) mode = { kind: 'resend', sequence: resend };
  if (replace !== undefined) mode = { kind: 'replace', sequence: replace };
  return {
    mode,
    ...(o.site ? { site: o.site } : {}),
    media: o.to,
    mediaBytes: parseByteSize(o.mediaSize),
    signers: Math.max(o.signer.length, 1),
    expiresInMs: parseDuration(o.expires),
    all: o.all ?? false,
    force: o.force ?? false,
    includeRefused: o.includeRefused ?? false,
    noEvidence: !o.evidence,
    noDelta: !o.delta,
    noMd5: !o.md5,
    noChunks: !o.chunks,
    ...signerFiles,
  };
}

function leftOutLines(plan: Pick<ExportPlan, 'leftOut'>): string[] {
  return plan.leftOut.map(
    (a) =>
      `left out ${a.name} ${a.version}: the site refused it by policy (${a.code}${a.rule === null ? '' : `, rule ${a.rule}`}); --include-refused sends it anyway`,
  );
}

/** One image of an export: what travels, and what stays off the media because the site (or the bundle) has it. */
function imageNote(i: ImageSummary): string {
  const out = [
    `OCI image ${i.repository}:${i.tag} ${i.platforms.join(' ') || 'single manifest'}, ${i.blobsCarried} of ${i.blobs} blobs carried (${formatBytes(i.bytesCarried)})`,
  ];
  if (i.blobsHeldBySite > 0)
    out.push(`${i.blobsHeldBySite} held by the site (${formatBytes(i.bytesHeldBySite)}) left out`);
  if (i.blobsCarriedEarlier > 0) out.push(`${i.blobsCarriedEarlier} carried by an earlier image of this bundle`);
  return out.join(', ');
}

function planLines(p: ExportPlan): string[] {
  const lines = [
    `bundle #${p.sequence} for site ${p.site} (${p.basis}): ${p.artifacts.length} artifact(s), ${p.volumes.length} volume(s), ${formatBytes(p.bytes)}`,
    ...p.artifacts.map((a) => {
      const notes = [`${formatBytes(a.size)}`];
      if (a.evidence) notes.push('vendor evidence');
      if (a.delta) notes.push(`delta against ${a.delta.base}: ${formatBytes(a.delta.carried)} carried`);
      if (a.image) notes.push(imageNote(a.image));
      return `  ${a.name} ${a.version} (${notes.join(', ')})`;
    }),
    ...leftOutLines(p),
  ];
  if (p.bytesSaved > 0) lines.push(`deltas save ${formatBytes(p.bytesSaved)}`);
  lines.push(
    `${p.mediaNeeded} medium/media of ${formatBytes(p.mediaSize)} (volumes of at most ${formatBytes(p.volumeCapacity)}):`,
  );
  if (!p.fits)
    lines.push('  a volume and its bundle files do not fit on one medium of that size: give a smaller --media-size');
  for (const m of p.media) {
    const free = m.freeSpace === null ? '' : `, ${formatBytes(m.freeSpace)} free`;
    const where = m.path === null ? '' : ` ${m.path}`;
    lines.push(
      `  medium ${m.medium}${where}: ${m.volumes.join(', ')} - needs ${formatBytes(m.freeSpaceNeeded)} (bundle files and margin ${formatBytes(m.bundleFiles + m.margin)})${free}`,
    );
    for (const a of m.abandoned) lines.push(`    an abandoned ${path.basename(a)} there will be removed`);
  }
  for (const r of p.replaces) lines.push(`replaces bundle #${r.sequence} (${r.bundleId})`);
  if (p.refusal) lines.push(`export would refuse: ${p.refusal.code}: ${p.refusal.message}`);
  lines.push('nothing was written');
  return lines;
}

/** How the summary names what was done, per mode. */
const WRITTEN: Record<ExportRequest['mode']['kind'], string> = {
  fresh: 'written',
  replace: 'written',
  resend: 'resent',
};

function resultJson(r: ExportResult): object {
  return {
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
    leftOut: r.leftOut,
    bytesSaved: r.bytesSaved,
    replaced: r.replaced,
    removedPartials: r.removedPartials,
    createdMedia: r.createdMedia,
  };
}

function resultLines(r: ExportResult, verb: string): string[] {
  const lines = [
    ...r.removedPartials.map((p) => `removed ${p}, left by an export that was interrupted`),
    ...r.createdMedia.map((m) => `created ${m}: it did not exist (if a stick should be mounted there, it is not)`),
    `bundle ${r.station} #${r.sequence} (${r.bundleId}) for site ${r.site} ${verb} to ${r.path}`,
  ];
  if (r.media.length > 1) {
    lines.push(...r.media.map((m, k) => `  medium ${k + 1} of ${r.media.length}: ${m.path} (${m.volumes.join(', ')})`));
  }
  lines.push(
    `${r.artifacts.length} artifact(s), ${r.volumes.length} volume(s), ${formatBytes(r.bytes)}, signed by ${r.signers.join(', ')}, expires ${r.expires}`,
  );
  for (const a of r.artifacts) {
    if (a.image) lines.push(`  ${a.name} ${a.version}: ${imageNote(a.image)}`);
    if (a.delta) {
      lines.push(
        `  ${a.name} ${a.version}: delta against ${a.delta.base}, ${formatBytes(a.delta.carried)} of ${formatBytes(a.size)} carried (${formatBytes(a.delta.saved)} saved)`,
      );
    }
  }
  lines.push(...leftOutLines(r));
  if (r.bytesSaved > 0) lines.push(`deltas saved ${formatBytes(r.bytesSaved)}`);
  lines.push(...r.replaced.map((x) => `replaces bundle #${x.sequence} (${x.bundleId}), now superseded`));
  return lines;
}

/**
 * SIGINT/SIGTERM while writing: the folders being written are removed before the process exits, and the outcome is
 * reported like any failure (E_INTERRUPTED, exit 3).
 */
function onInterrupt(ctx: CommandContext): () => void {
  const handler = (signal: NodeJS.Signals) => {
    // Synchronous on purpose: the folders go before the process does, whatever the write in flight is doing.
    const removed = removeHeldFolders();
    const err = interruptedError(
      {
        what: 'export',
        next: `${removed.length} unfinished bundle folder(s) removed, nothing was recorded: run the export again`,
      },
      signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT',
    );
    if (ctx.json) process.stdout.write(`${JSON.stringify({ ok: false, code: err.code, message: err.message })}\n`);
    process.stderr.write(`${err.line()}\n`);
    process.exit(exitCodeFor(err.code));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
  return () => {
    process.removeListener('SIGINT', handler);
    process.removeListener('SIGTERM', handler);
  };
}

export function registerExport(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  program
    .command('export')
    .description('write what a site lacks as one signed bundle onto media, split into volumes')
    .option(
      '--to <MEDIA_DIR>',
      'where the media is mounted (an existing folder); repeat to spread the volumes over several media',
      collect,
      [],
    )
    .option('--site <SITE_ID>', 'the destination site: each site has its own chain of bundles (1, 2, 3 ...)')
    .option('--signer <DIR>', 'a signer folder (KEYDIR/signers/NAME); repeat for m-of-n', collect, [])
    .option('--media-size <SIZE>', 'size of each medium, e.g. 4G, 700M (bundle files and a margin included)', '4G')
    .option('--expires <DURATION>', 'how long the bundle may be imported, e.g. 30d, 12h', '30d')
    .option('--all', 'export the whole catalog again, not only what the site lacks')
    .option('--plan', 'show what would be written, on how many media and the free space each needs; write nothing')
    .option('--resend <N>', "write the site's bundle N again exactly as it was (same statement), signed again")
    .option(
      '--replace <N>',
      "replace the site's bundle N (lost, expired, or refused inside) and any written after it: a new bundle chained onto N-1, carrying what the site lacks now",
    )
    .option('--force', 'build on a bundle the import station has not acknowledged (or has refused) in a receipt')
    .option('--include-refused', "send artifacts the site's policy refused (its receipt says so) anyway")
    .option('--no-evidence', 'leave the vendor evidence out of the statement (import stations older than format 4.5)')
    .option(
      '--no-delta',
      'send every image whole, even where the import station holds an earlier release (import stations older than format 4.6)',
    )
    .option(
      '--no-md5',
      "leave the attested md5 out of the statement (import stations older than format 4.8 refuse it); the site's import station then computes Glance's checksum itself",
    )
    .option(
      '--no-chunks',
      "leave the signed chunk lists out of the statement (import stations older than format 4.11 refuse them); the site's import station then hashes each image whole, in one thread",
    )
    .option(
      '--verify-all-digests',
      'before signing, recompute sha512 and md5 of every stored image as well as its whole sha256, even where an earlier export proved its chunk list (about three times the CPU)',
    )
    .addHelpText(
      'after',
      '\nSigner keys are unlocked with ECLUSE_PASSPHRASE or a terminal prompt.\n\n' +
        'Each site has its own chain: export --site A, --site B, --site A writes A #1, B #1, A #2.\n' +
        'A bundle lost, expired, or refused inside (ecluse relay sites says which): ecluse export --replace N --site S\n' +
        'writes a new bundle N in its place; --resend N --site S writes the very same bundle again (same statement).\n' +
        "An artifact the site's policy refused is left out of the next export (--include-refused sends it).\n\n" +
        'Deltas: once the import station sends receipts (ecluse relay receipt import), an image whose earlier release\n' +
        'the site holds travels as a delta: only the content-defined chunks the site lacks, rebuilt and verified\n' +
        'against the full sha256/sha512 inside. The summary and --plan say how many bytes that saves.\n\n' +
        'Each stored image is hashed while it is written and compared with the sha256 recorded by relay add: one\n' +
        'that changed on disk since is refused (E_DIGEST) before anything is signed, and nothing stays on the media.\n' +
        'A later export of the same image (another site, a later bundle) checks it by the chunk list its first export\n' +
        'proved against that sha256: a third less CPU, and a changed byte is still refused, naming its chunk.\n\n' +
        'Interrupted (Ctrl-C, SIGTERM): the unfinished bundle folder is removed (E_INTERRUPTED, exit 3).\n\nExamples:\n' +
        '  ecluse export --plan --site paris-1 --to /media/usb0 --media-size 32G\n' +
        '  ecluse export --to /media/usb0 --site paris-1 --signer keys/signers/alice --signer keys/signers/bob --media-size 32G\n' +
        '  ecluse export --to /media/usb0 --site lyon-2 --signer keys/signers/alice --no-md5   # import station older than 4.8\n' +
        '  ecluse export --to /media/usb0 --site lyon-2 --signer keys/signers/alice --no-chunks   # import station older than 4.11\n',
    )
    .action(async (o: ExportFlags) => {
      await report<object>(ctx(), async () => {
        // Loaded when the command runs (cli/main.ts), and only what an export needs.
        const { newestRevocations, rootDocumentsOf, signerFileBytes } = await import('./export-key-files.js');
        const request = requestOf(o, signerFileBytes(o.signer));
        const { openRelayHome } = await import('../../relay/catalog.js');
        const { planExport, writeBundle } = await import('../../relay/export.js');
        if (o.plan) {
          const h = openRelayHome(resolveHome(home()));
          try {
            const { plan } = await planExport(h, request);
            if (plan.refusal?.code === 'E_NOTHING_TO_EXPORT') {
              throw new EcluseError(plan.refusal.code, plan.refusal.message);
            }
            return { json: { plan }, human: planLines(plan) };
          } finally {
            h.db.close();
          }
        }
        if (o.to.length === 0) throw new EcluseError('E_USAGE', "required option '--to <MEDIA_DIR>' not specified");
        if (o.signer.length === 0) throw new EcluseError('E_USAGE', "required option '--signer <DIR>' not specified");
        const { loadSigner } = await import('../../keys/signer.js');
        const { PASSPHRASE_ENV, resolvePassphrase, signerPassphraseEnv } = await import('../../keys/passphrase.js');
        const { progressBar } = await import('../progress.js');
        const h = openRelayHome(resolveHome(home()));
        const bar = progressBar('writing', !ctx().json);
        const stopWatching = onInterrupt(ctx());
        try {
          const prepared = await planExport(h, request);
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
          const revocations = await newestRevocations(o.signer, signers);
          const rootDocuments = await rootDocumentsOf(path.resolve(o.signer[0] as string, '..', '..'));
          const r = await writeBundle(h, prepared, signers, {
            revocations,
            rootDocuments,
            onProgress: (d, t) => bar.update(d, t),
            verifyAllDigests: o.verifyAllDigests === true,
            chunks: o.chunks,
          });
          bar.stop();
          return { json: resultJson(r), human: resultLines(r, WRITTEN[request.mode.kind]) };
        } finally {
          stopWatching();
          bar.stop();
          h.db.close();
        }
      });
    });
}
