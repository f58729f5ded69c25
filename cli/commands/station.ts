/** The import station: `site init`, `inspect`, `verify`, `import`, `serve`. */
import type { Command } from 'commander';
import { inspectMedia } from '../../sneakernet/inspect.js';
import { asEcluseError, EcluseError } from '../../sneakernet/errors.js';
import { parseByteSize } from '../../sneakernet/volume-plan.js';
import { pushPromoted, runImport, type ImportOutcome, type TargetOutcome } from '../../verifier/import.js';
import { imageSigner } from '../../verifier/image-signature.js';
import { DEFAULT_UPDATE_SPOOL } from '../../verifier/self-update/hand-over.js';
import { anchorsDir, isRoot, pinFromHome } from './self-update.js';
import { initSite, openSite } from '../../verifier/site.js';
import { receiptKey } from '../../verifier/receipts.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';
import { interruptible } from '../interrupt.js';
import { progressBar } from '../progress.js';
import { registerSiteSettings } from './site-settings.js';

function outcomeJson(r: ImportOutcome, targets: TargetOutcome[]) {
  return {
    bundle: r.bundle,
    chain: r.chain,
    checks: r.checks,
    images: r.images,
    containerImages: r.containerImages,
    alreadyHere: r.alreadyHere,
    handedOver: r.handedOver,
    handOverError: r.handOverError,
    retired: r.retired,
    kept: r.kept,
    artifacts: r.artifacts,
    targets,
  };
}

function chainLine(r: ImportOutcome): string[] {
  if (r.chain.position === 'ahead') {
    const m = r.chain.missing;
    return [
      `  gap: bundle(s) ${m.join(', ')} of station ${r.bundle.station} not imported (named in the audit log, the status and the next receipt)`,
    ];
  }
  if (r.chain.position === 'late')
    return [`  late: fills a gap, named as predecessor by the accepted #${r.chain.successor}`];
  return [];
}

/** site init as root: the self-update anchors pinned, or (site init itself never fails for it) why not. */
function pinOrSay(home: string): { anchors: string | null; human: string } {
  try {
    const r = pinFromHome(home, anchorsDir());
    return { anchors: r.json.anchors, human: r.human };
  } catch (e) {
    return { anchors: null, human: `self-update anchors not pinned: ${asEcluseError(e).line()}` };
  }
}

export function registerStation(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const site = program.command('site').description('the import station site');
  site
    .command('init')
    .description('set up this import station for a site: pin the site trust anchors (once, at install)')
    .requiredOption('--trust <DIR>', 'the trust folder made by "ecluse keys init" (KEYDIR/trust)')
    .requiredOption('--site <SITE_ID>', "this site's id; bundles for other sites are refused")
    .option('--threshold <M>', 'distinct signers a bundle needs (m of n)', '1')
    .addHelpText(
      'after',
      '\nExample:\n  ecluse --home /var/lib/ecluse site init --trust /media/usb0/trust --site paris-1 --threshold 2\n',
    )
    .action(async (o: { trust: string; site: string; threshold: string }) => {
      await report(ctx(), async () => {
        const s = initSite(resolveHome(home()), { trustDir: o.trust, site: o.site, threshold: Number(o.threshold) });
        // The station's image-signing key and certificate (img_signature), made now rather than during the first
        // import: `ecluse site cert` can hand the certificate to Barbican before anything is imported.
        await imageSigner(s.db, s.home.root, s.siteId);
        // And the receipt key, printed now so the operator can carry it out to pin at the export station.
        const receipt = receiptKey(s);
        s.db.close();
        // Self-update (FORMAT 4.10): run as root, site init pins the anchors root's own check trusts; otherwise says how.
        const pin = isRoot() ? pinOrSay(s.home.root) : null;
        const pubFile = s.home.receiptKey.pub;
        return {
          json: {
            site: s.siteId,
            threshold: s.threshold,
            rootKeyId: s.anchors.rootKeyId,
            home: s.home.root,
            receiptKey: { keyId: receipt.keyId, publicKey: receipt.publicPem, file: pubFile },
            selfUpdateAnchors: pin?.anchors ?? null,
          },
          human: [
            `import station for site ${s.siteId} ready in ${s.home.root}: root ${s.anchors.rootKeyId.slice(0, 16)}, ${s.threshold} signer(s) required`,
            `receipt key ${receipt.keyId} in ${pubFile}: pin it outside with "ecluse relay receipt trust FILE --site ${s.siteId}"`,
            pin
              ? pin.human
              : `self-update anchors not pinned (not root): to let this station update itself, run as root "ecluse --home ${s.home.root} self-update pin"`,
          ],
        };
      });
    });

  registerSiteSettings(site, ctx, home);

  program
    .command('inspect')
    .description('show what is on the media, trusting nothing (nothing is verified, nothing changes)')
    .argument('<MEDIA_DIR>', 'where the media is mounted')
    .addHelpText('after', '\nExample:\n  ecluse inspect /run/ecluse/media/sdb1 --json\n')
    .action(async (media: string) => {
      await report(ctx(), async () => {
        const bundles = await inspectMedia(media);
        if (bundles.length === 0)
          throw new EcluseError('E_NO_BUNDLE', `no écluse bundle on ${media} (looked in ecluse/bundles/)`);
        const human: string[] = [];
        for (const b of bundles) {
          human.push(`bundle ${b.id} (NOT verified: what the media claims)`);
          if (b.claimed) {
            const c = b.claimed;
            human.push(
              `  station ${c.station} #${c.sequence} for site ${c.site}, created ${c.created}, expires ${c.expires}`,
            );
            for (const a of c.artifacts)
              human.push(
                `  artifact ${a.name} ${a.version} (${a.image ? `OCI image ${a.image.repository}:${a.image.tag} ${a.image.platforms.join(' ') || 'single manifest'}, ${a.image.carriedBlobs}/${a.image.blobs} blobs` : a.package ? `écluse's own package for ${a.package.arch}` : a.diskFormat}, ${formatBytes(a.size)})${a.delta ? `: delta against ${a.delta.base}, ${formatBytes(a.delta.carried)} carried` : ''}`,
              );
            human.push(`  volumes: ${c.volumes.map((v) => `${v.name}${v.present ? '' : ' (missing)'}`).join(', ')}`);
          }
          for (const s of b.signatures)
            human.push(`  signature by ${s.claimedSigner ?? 'unknown'} (key ${s.keyId.slice(0, 16)})`);
          for (const p of b.problems) human.push(`  problem: ${p}`);
        }
        return { json: { media, bundles }, human };
      });
    });

  for (const mode of ['verify', 'import'] as const) {
    program
      .command(mode)
      .description(
        mode === 'verify'
          ? 'run every check of an import, changing nothing (reads every byte)'
          : 'verify the bundle on the media, stage its images privately and promote them atomically; audited',
      )
      .argument('<MEDIA_DIR...>', 'where the media is mounted; several folders when the bundle spans several media')
      .option('--bundle <ID>', 'the bundle to take when the media holds several (its id or any unique prefix)')
      .option('--read-rate <SIZE>', 'read the media at most this fast per second, e.g. 50M (default: no limit)')
      .option(
        '--update-spool <DIR>',
        mode === 'import'
          ? "where écluse's own package is handed over to the installer (docs/FORMAT.md 4.10)"
          : 'unused by verify (import hands écluse’s own package over there)',
        DEFAULT_UPDATE_SPOOL,
      )
      .addHelpText(
        'after',
        `\nA bundle written over several media (export --to A --to B ...) is ${mode === 'verify' ? 'verified' : 'imported'} from all of them at once:
give every folder, in any order; each volume is read where it lies. Ctrl-C stops cleanly: nothing is kept${mode === 'import' ? ',\nthe staging folder is removed and the interruption is audited' : ''}.

Exit status: 0 ${mode === 'verify' ? 'all checks passed' : 'imported'}, 1 refused (the line names the check and its E_ code), 2 bad usage, 3 local failure
(E_NO_SPACE, E_INTERRUPTED, ...).

Examples:
  ecluse ${mode} /run/ecluse/media/sdb1 --json
  ecluse ${mode} /run/ecluse/media/sdb1 /run/ecluse/media/sdc1 /run/ecluse/media/sdd1
`,
      )
      .action(async (media: string[], o: { bundle?: string; readRate?: string; updateSpool: string }) => {
        await report(ctx(), async () => {
          const readRate = o.readRate === undefined ? undefined : parseByteSize(o.readRate);
          if (readRate === 0) throw new EcluseError('E_USAGE', '--read-rate must be more than 0 bytes per second');
          const s = openSite(resolveHome(home()));
          const bar = progressBar(mode === 'verify' ? 'verifying' : 'importing', !ctx().json);
          const next =
            mode === 'import'
              ? 'nothing was promoted and the staging folder was removed; run the import again'
              : 'nothing was changed; run the verification again';
          try {
            const r = await interruptible({ what: mode, next }, (signal) =>
              runImport(s, {
                media,
                bundleId: o.bundle,
                mode,
                signal,
                updateSpool: o.updateSpool,
                ...(readRate ? { readRate } : {}),
                onProgress: (d, t) => bar.update(d, t),
              }),
            );
            bar.stop();
            // The site's own Glance targets, after the commit (none configured: nothing); a failure is reported.
            const targets = mode === 'import' ? await pushPromoted(s, r) : [];
            const b = r.bundle;
            const head = `bundle ${b.station} #${b.sequence} (${b.id}) signed by ${b.signers.join(', ')}`;
            return {
              json: outcomeJson(r, targets),
              human:
                mode === 'verify'
                  ? [
                      `${head}: every check passed, nothing changed`,
                      ...r.artifacts.map((a) => `  ${a.name} ${a.version} ok (${formatBytes(a.size)})`),
                    ]
                  : [
                      `${head}: imported`,
                      ...chainLine(r),
                      ...r.images.map((i) => `  image ${i.id} ${i.name} ${i.version} (${formatBytes(i.size)})`),
                      ...r.containerImages.map(
                        (c) =>
                          `  container image ${c.repository}:${c.tag} (${c.name} ${c.version}, ${c.digest}): ${c.carriedBlobs} of ${c.blobs} blob(s) carried, ${formatBytes(c.size)}${c.platforms.length ? `, ${c.platforms.join(', ')}` : ''}`,
                      ),
                      ...r.alreadyHere.map(
                        (a) => `  ${a.name} ${a.version} already here (same digest): not promoted again`,
                      ),
                      ...(r.handedOver
                        ? [
                            `  ecluse ${r.handedOver.version} (${r.handedOver.arch}) handed over to the installer: ${r.handedOver.deb}`,
                          ]
                        : []),
                      ...(r.handOverError ? [`  ${r.handOverError.code}: ${r.handOverError.message}`] : []),
                      ...r.retired.map(
                        (x) =>
                          `  retired ${x.name}@${x.version} (the policy keeps fewer versions): ${formatBytes(x.bytes)} freed`,
                      ),
                      ...r.kept.map((k) => `  kept ${k.name}@${k.version} for now: ${k.why}`),
                      ...targets.map((t) =>
                        t.outcome === 'pushed'
                          ? `  pushed image ${t.imageId} to target ${t.target} as ${t.remoteId ?? '?'}`
                          : `  E_TARGET: push of image ${t.imageId} to target ${t.target} failed: ${t.error ?? ''}; retry with "ecluse target push"`,
                      ),
                    ],
            };
          } finally {
            bar.stop();
            s.db.close();
          }
        });
      });
  }

  program
    .command('serve')
    .description(
      'serve the image store over the OpenStack Image (Glance v2) API, and the container images over the OCI Distribution API (read-only) when --registry-listen is given',
    )
    .option('--listen <HOST:PORT>', 'address to listen on', '127.0.0.1:9292')
    .option(
      '--registry-listen <HOST:PORT>',
      'also serve the container registry (pulls only) on this address, a listener of its own',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  ecluse serve --listen 127.0.0.1:9292 &\n  openstack --os-auth-type none --os-endpoint http://127.0.0.1:9292 image list\n\n' +
        '  ecluse serve --registry-listen 127.0.0.1:5000 &\n  skopeo inspect --tls-verify=false docker://127.0.0.1:5000/acme/app:1.4\n' +
        '  (an image added outside from docker://vendor.example:5000/acme/app:1.4 is served as 127.0.0.1:5000/acme/app:1.4;\n' +
        '   beyond loopback, log in with a token from "ecluse token create --role reader" as the password)\n',
    )
    .action(async (o: { listen: string; registryListen?: string }) => {
      const glance = hostPort(o.listen, '--listen', '127.0.0.1:9292');
      const registry =
        o.registryListen === undefined ? null : hostPort(o.registryListen, '--registry-listen', '127.0.0.1:5000');
      if (!glance || registry === undefined) {
        process.exitCode = 2;
        return;
      }
      if (registry && registry.host === glance.host && registry.port === glance.port && glance.port !== 0) {
        process.stderr.write(
          `E_USAGE: --registry-listen must differ from --listen (Glance's /v2/images and the registry's /v2/<name> never share a listener)\n`,
        );
        process.exitCode = 2;
        return;
      }
      const s = openSite(resolveHome(home()));
      // Loaded here: express and the web view are not needed by the other commands of this group.
      const { startGlanceServer } = await import('../../verifier/glance/server.js');
      const server = await startGlanceServer({
        db: s.db,
        imagesDir: s.home.images,
        stagingDir: s.home.staging,
        host: glance.host,
        port: glance.port,
      });
      let registryServer: { close(): Promise<void> } | null = null;
      // Installed before anything is announced: a supervisor that stops the server as soon as it reads the line
      // gets a clean close, not the default death by signal.
      const stop = () => {
        void Promise.all([server.close(), registryServer?.close()]).then(() => {
          s.db.close();
          process.exit(0);
        });
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
      process.stderr.write(`serving the image store of site ${s.siteId} on ${server.url}\n`);
      if (registry) {
        const { startRegistryServer } = await import('../../verifier/registry/server.js');
        try {
          const r = await startRegistryServer({ db: s.db, blobsDir: s.home.registryBlobs, ...registry });
          registryServer = r;
          process.stderr.write(
            `serving the container registry of site ${s.siteId} on ${r.url} (pull ${r.address}/REPOSITORY:TAG)\n`,
          );
        } catch (e) {
          await server.close();
          throw e;
        }
      }
    });
}

/** HOST:PORT of a listen option, or undefined after saying why it is not one. */
function hostPort(value: string, flag: string, example: string): { host: string; port: number } | undefined {
  const m = /^(.*):([0-9]{1,5})$/.exec(value);
  if (!m || !m[1] || !m[2] || Number(m[2]) > 65535) {
    process.stderr.write(
      `E_USAGE: ${flag} wants HOST:PORT with a port from 0 to 65535, e.g. ${example} (got ${value})\n`,
    );
    return undefined;
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}
