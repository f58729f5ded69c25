/**
 * `ecluse self-update pin` and `ecluse self-update check` (docs/FORMAT.md 4.10): root's side of self-update. `pin`
 * copies the site's installed anchors, id and threshold into a root-owned folder; `check` re-verifies a package handed
 * over, and the evidence beside it, against those anchors only (the privileged installer runs it before dpkg).
 */
import type { Command } from 'commander';
import { EcluseError } from '../../sneakernet/errors.js';
import { openSite } from '../../verifier/site.js';
import { heldRevocations } from '../../verifier/revocations.js';
import { DEFAULT_ANCHORS_DIR, pinAnchors } from '../../verifier/self-update/anchors.js';
import { checkHandedOver } from '../../verifier/self-update/check.js';
import { resolveHome } from '../home.js';
import { report, type CommandContext } from '../output.js';

/** Where a pin goes: `--to`, else $ECLUSE_SELF_UPDATE_ANCHORS (tests), else /etc/ecluse/self-update. */
export function anchorsDir(to?: string): string {
  return to ?? process.env.ECLUSE_SELF_UPDATE_ANCHORS ?? DEFAULT_ANCHORS_DIR;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** Pins the anchors of the station in `home` into `to`; the lines to print. */
export function pinFromHome(home: string, to: string) {
  const site = openSite(home);
  try {
    const r = pinAnchors(
      site.home.trust,
      to,
      { site: site.siteId, threshold: site.threshold },
      heldRevocations(site.db),
    );
    return {
      json: {
        anchors: r.dir,
        changed: r.changed,
        site: r.site.site,
        threshold: r.site.threshold,
        rootKeyId: r.anchors.rootKeyId,
      },
      human: `${r.changed ? 'pinned' : 'already pinned:'} self-update anchors of site ${r.site.site} in ${r.dir} (root ${r.anchors.rootKeyId.slice(0, 16)}, ${r.site.threshold} signer(s) required): "ecluse self-update check" trusts only these`,
    };
  } finally {
    site.db.close();
  }
}

export function registerSelfUpdate(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const su = program
    .command('self-update')
    .description(
      "écluse's own package: root-owned anchors, and the root's check of a package handed over (FORMAT 4.10)",
    );
  su.command('pin')
    .description(
      "as root: copy the site's installed trust anchors, site id and threshold into a folder only root may change",
    )
    .option('--to <DIR>', 'where to pin them', DEFAULT_ANCHORS_DIR)
    .addHelpText(
      'after',
      `
Run once, as root, after "ecluse site init" (site init run as root pins them itself). Pinning the same anchors again
changes nothing; other anchors or another site is refused (remove the folder first, as root).

Example:
  sudo ecluse --home /var/lib/ecluse self-update pin
`,
    )
    .action(async (o: { to: string }, cmd: Command) => {
      await report(ctx(), () => {
        const given = cmd.getOptionValueSource('to') === 'cli';
        if (!given && !isRoot()) {
          throw new EcluseError(
            'E_USAGE',
            `pinning into ${o.to} must be done as root, so that the daemon cannot change the anchors: run it with sudo`,
          );
        }
        return Promise.resolve(pinFromHome(resolveHome(home()), given ? o.to : anchorsDir()));
      });
    });
  su.command('check')
    .description('re-verify a package handed over, and its evidence folder, against the root-owned anchors only')
    .argument('<FILE.deb>', 'the package in the spool: <sha256>.deb, with <sha256>.bundle/ beside it')
    .option('--anchors <DIR>', 'the folder "self-update pin" wrote', DEFAULT_ANCHORS_DIR)
    .addHelpText(
      'after',
      `
Checks, in order: the pinned anchors; the file's sha256 (and its name); the evidence folder's layout; root documents,
revocation list and a threshold of trusted signers over the statement (as "ecluse verify"); the statement is for the
pinned site; it lists an ecluse-package of this sha256 and size; dpkg-deb -f says the signed Package, Version and
Architecture. Exit status 0 and one line (--json: one JSON object) when all pass; 1 and "E_CODE: ..." naming the
failed check otherwise.

Example:
  ecluse self-update check /var/lib/ecluse-update/incoming/3f5a...e1.deb --json
`,
    )
    .action(async (file: string, o: { anchors: string }) => {
      await report(ctx(), async () => {
        const r = await checkHandedOver(file, o.anchors);
        return {
          json: r,
          human: `ecluse ${r.package.version} (${r.package.arch}) is the package bundle ${r.bundle.station} #${r.bundle.sequence} signed for site ${r.bundle.site} by ${r.bundle.signers.join(', ')}: it may be installed`,
        };
      });
    });
}
