/** `ecluse site show` and `ecluse site set KEY VALUE`: what this import station trusts, and its settings. */
import type { Command } from 'commander';
import { setSiteSetting, SITE_SETTINGS, siteView } from '../../verifier/site-settings.js';
import { openSite } from '../../verifier/site.js';
import { resolveHome } from '../home.js';
import { report, type CommandContext } from '../output.js';

const settingsHelp = Object.entries(SITE_SETTINGS)
  .map(([k, s]) => `  ${k}: ${s.meaning}; ${s.values} (default ${s.default})`)
  .join('\n');

export function registerSiteSettings(site: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  site
    .command('show')
    .description(
      'show what this import station trusts and how it is set: the site id, the pinned root (version, key), the\n' +
        'threshold, the revocation list in force and the signers it revokes, the policy in force, every site setting',
    )
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse site show --json\n')
    .action(async () => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const v = siteView(s);
          const width = Math.max(...v.settings.map((x) => `${x.key} = ${x.value}`.length));
          return {
            json: v,
            human: [
              `site ${v.site} (home ${v.home})`,
              `root: version ${v.root.version}, key ${v.root.keyId.slice(0, 16)}, valid until ${v.root.notAfter}, pinned by ${v.root.pinnedBy}${v.root.pinnedBy === 'rotation' ? ` (installed: version ${v.root.installedVersion})` : ''}`,
              `threshold: ${v.threshold} distinct trusted signer(s) per bundle`,
              v.revocations
                ? `revocation list: version ${v.revocations.version} of ${v.revocations.issued}; revoked: ${
                    v.revocations.revoked
                      .map(
                        (r) =>
                          `${r.name} (key ${r.keyId.slice(0, 16)}, ${r.revokedAt}${r.reason ? `, ${r.reason}` : ''})`,
                      )
                      .join('; ') || 'none'
                  }`
                : 'revocation list: none received yet (no signer revoked)',
              `policy: ${v.policy.source} ${v.policy.digest.slice(0, 12)}`,
              'settings (change with "ecluse site set KEY VALUE"):',
              ...v.settings.map(
                (x) =>
                  `  ${`${x.key} = ${x.value}`.padEnd(width)}  ${x.meaning}; ${x.values}${x.value === x.default ? ' (default)' : ` (default ${x.default})`}`,
              ),
            ],
          };
        } finally {
          s.db.close();
        }
      });
    });

  site
    .command('set')
    .description('change one site setting (audited); "ecluse site show" lists them with their values')
    .argument('<KEY>', 'the setting')
    .argument('<VALUE>', 'its new value')
    .addHelpText(
      'after',
      `\nSettings:\n${settingsHelp}\n\nExample:\n  ecluse --home /var/lib/ecluse site set glance_bundle_images writable\n`,
    )
    .action(async (key: string, value: string) => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const r = setSiteSetting(s, key, value);
          return {
            json: r,
            human: r.changed
              ? `site setting ${r.key} changed from ${r.from} to ${r.to} (audited)`
              : `site setting ${r.key} is already ${r.to}: nothing changed`,
          };
        } finally {
          s.db.close();
        }
      });
    });
}
