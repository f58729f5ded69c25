/**
 * `ecluse site keystone`: the site's Keystone validates the tokens of the Glance API's users (their projects own
 * what they create; their roles admin/member/reader decide what they may do). `--off` goes back to écluse's own
 * tokens. The service user logs in once before the setting is recorded, unless `--no-check`.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { EcluseError } from '../../sneakernet/errors.js';
import { openSite } from '../../verifier/site.js';
import {
  DEFAULT_CACHE_SECONDS,
  MAX_CACHE_SECONDS,
  keystoneSettings,
  parseKeystoneSettings,
  setKeystoneSettings,
  type KeystoneSettings,
} from '../../verifier/glance/keystone-settings.js';
import { KeystoneTokens } from '../../verifier/glance/keystone-tokens.js';
import { resolveHome } from '../home.js';
import { report, type CommandContext } from '../output.js';

interface Options {
  url?: string;
  user?: string;
  passwordFile?: string;
  project?: string;
  userDomain?: string;
  projectDomain?: string;
  appCredentialId?: string;
  appCredentialSecretFile?: string;
  cacheSeconds?: string;
  off?: boolean;
  check: boolean;
}

/** One line describing the setting, for humans. */
export function describeKeystone(s: KeystoneSettings | null): string {
  if (!s) return "Keystone: not used (the Glance API takes écluse's own tokens)";
  const who = s.appCredentialId
    ? `application credential ${s.appCredentialId} (secret in ${s.appCredentialSecretFile})`
    : `${s.user}@${s.userDomain} in project ${s.project}@${s.projectDomain} (password in ${s.passwordFile})`;
  return `Keystone: ${s.url}, service user ${who}, answers cached ${s.cacheSeconds} s`;
}

export function registerSiteKeystone(
  program: Command,
  ctx: () => CommandContext,
  home: () => string | undefined,
): void {
  const site = program.commands.find((c) => c.name() === 'site') ?? program.command('site');
  site
    .command('keystone')
    .description("validate the Glance API's tokens with the site's Keystone (as keystonemiddleware does)")
    .option('--url <URL>', 'the identity endpoint, e.g. http://keystone:5000/v3')
    .option('--user <NAME>', 'the service user (password login)')
    .option('--password-file <FILE>', "file holding the service user's password (read at each login)")
    .option('--project <NAME>', "the service user's project")
    .option('--user-domain <NAME>', "the service user's domain", 'Default')
    .option('--project-domain <NAME>', "the project's domain", 'Default')
    .option('--app-credential-id <ID>', 'log in with this application credential instead of a password')
    .option('--app-credential-secret-file <FILE>', "file holding the application credential's secret")
    .option(
      '--cache-seconds <N>',
      `how long a validated token is trusted before Keystone is asked again (0-${MAX_CACHE_SECONDS}; a revoked token stops working within it)`,
      String(DEFAULT_CACHE_SECONDS),
    )
    .option('--no-check', 'record the setting without logging in the service user first')
    .option('--off', "stop using Keystone (écluse's own tokens only)")
    .addHelpText(
      'after',
      '\nExample:\n  ecluse site keystone --url http://keystone.example:5000/v3 --user glance ' +
        '--password-file /etc/ecluse/glance.pw --project service\n  ecluse site keystone --off\n',
    )
    .action(async (o: Options) => {
      await report(ctx(), async (): Promise<{ json: Record<string, unknown>; human: string }> => {
        const s = openSite(resolveHome(home()));
        try {
          if (o.off) {
            if (o.url !== undefined) throw new EcluseError('E_USAGE', '--off takes no other option');
            const was = keystoneSettings(s.db);
            if (was) setKeystoneSettings(s.db, null);
            return { json: { keystone: null, changed: was !== null }, human: describeKeystone(null) };
          }
          if (o.url === undefined) {
            throw new EcluseError('E_USAGE', 'give --url URL and the service user (or --off); see --help');
          }
          const cache = Number(o.cacheSeconds);
          const settings = parseKeystoneSettings({
            url: o.url,
            user: o.user,
            userDomain: o.userDomain,
            passwordFile: o.passwordFile === undefined ? undefined : path.resolve(o.passwordFile),
            project: o.project,
            projectDomain: o.projectDomain,
            appCredentialId: o.appCredentialId,
            appCredentialSecretFile:
              o.appCredentialSecretFile === undefined ? undefined : path.resolve(o.appCredentialSecretFile),
            cacheSeconds: Number.isInteger(cache) ? cache : -1,
          });
          // The service user must be able to log in now: a typo found here, not at the first user's request.
          if (o.check) await new KeystoneTokens(settings).serviceToken();
          setKeystoneSettings(s.db, settings);
          return { json: { keystone: settings, checked: o.check }, human: describeKeystone(settings) };
        } finally {
          s.db.close();
        }
      });
    });
}
