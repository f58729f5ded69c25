/** `ecluse token create|list|revoke`: API tokens of the import station's Glance API (stored hashed). */
import type { Command } from 'commander';
import { EcluseError } from '../../sneakernet/errors.js';
import { createToken, listTokens, revokeToken, ROLES, type Role } from '../../verifier/glance/auth.js';
import { appendAudit } from '../../verifier/audit.js';
import { openSite } from '../../verifier/site.js';
import { resolveHome } from '../home.js';
import { report, type CommandContext } from '../output.js';

export function registerToken(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const token = program
    .command('token')
    .description('API tokens for the Glance API (X-Auth-Token); clients beyond loopback need one');

  token
    .command('create')
    .description('create a token and print it once (only its sha256 is kept)')
    .requiredOption('--role <ROLE>', 'reader (GET only) or admin (also create, upload, change, delete)')
    .option('--name <NAME>', 'a label, for `token list` and the audit log')
    .addHelpText(
      'after',
      '\nExample:\n  ecluse token create --role reader --name nova-compute --json\n' +
        '  openstack --os-auth-type token_endpoint --os-endpoint http://HOST:9292 --os-token TOKEN image list\n',
    )
    .action(async (o: { role: string; name?: string }) => {
      await report(ctx(), async () => {
        if (!(ROLES as readonly string[]).includes(o.role)) {
          throw new EcluseError('E_USAGE', `--role must be one of ${ROLES.join(', ')} (got "${o.role}")`);
        }
        const s = openSite(resolveHome(home()));
        try {
          const { token: secret, record } = s.db
            .transaction(() => {
              const made = createToken(s.db, o.role as Role, o.name);
              appendAudit(s.db, {
                kind: 'token.created',
                outcome: 'info',
                message: `API token ${made.record.id} (${made.record.role}${o.name ? `, ${o.name}` : ''}) created`,
                details: { id: made.record.id, role: made.record.role, name: made.record.name },
              });
              return made;
            })
            .immediate();
          return {
            json: { token: secret, id: record.id, role: record.role, name: record.name, created_at: record.created_at },
            human: [secret, `(token ${record.id}, role ${record.role}: shown once, only its hash is kept)`],
          };
        } finally {
          s.db.close();
        }
      });
    });

  token
    .command('list')
    .description('list tokens (ids, roles, names; never the tokens)')
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse token list --json\n')
    .action(async () => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const tokens = listTokens(s.db);
          return {
            json: { tokens },
            human: tokens.length
              ? tokens.map(
                  (t) =>
                    `${t.id}  ${t.role.padEnd(6)}  ${t.created_at}  ${t.revoked_at ? `revoked ${t.revoked_at}` : 'active'}  ${t.name ?? ''}`,
                )
              : 'no tokens',
          };
        } finally {
          s.db.close();
        }
      });
    });

  token
    .command('revoke')
    .description('revoke a token by id')
    .argument('<ID>', 'the token id shown by `token create` and `token list`')
    .addHelpText('after', '\nExample:\n  ecluse token revoke 3f2a9c1e\n')
    .action(async (id: string) => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const ok = s.db
            .transaction(() => {
              const done = revokeToken(s.db, id);
              if (done) {
                appendAudit(s.db, {
                  kind: 'token.revoked',
                  outcome: 'info',
                  message: `API token ${id} revoked`,
                  details: { id },
                });
              }
              return done;
            })
            .immediate();
          if (!ok) throw new EcluseError('E_NOT_FOUND', `no active token with id ${id}`);
          return { json: { id, revoked: true }, human: `token ${id} revoked` };
        } finally {
          s.db.close();
        }
      });
    });
}
