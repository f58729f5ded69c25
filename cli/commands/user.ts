/**
 * `ecluse user add|list|remove`: accounts of the audit web view (needed beyond loopback). The password comes from
 * `ECLUSE_USER_PASSWORD`, or the first line of stdin with `--password-stdin`. Both roles can only read; `operator`
 * is shown as such in the view and in the audit log.
 */
import type { Command } from 'commander';
import { EcluseError } from '../../sneakernet/errors.js';
import { appendAudit } from '../../verifier/audit.js';
import { addUser, listUsers, removeUser } from '../../verifier/web/accounts.js';
import { openSite } from '../../verifier/site.js';
import { resolveHome } from '../home.js';
import { report, type CommandContext } from '../output.js';

async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return (Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0] ?? '').trim();
  }
  const env = process.env.ECLUSE_USER_PASSWORD;
  if (env) return env;
  throw new EcluseError('E_INPUT', 'give the password in ECLUSE_USER_PASSWORD or on stdin with --password-stdin');
}

export function registerUser(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const user = program
    .command('user')
    .description('accounts of the audit web view (required beyond loopback)')
    .addHelpText(
      'after',
      '\nExample:\n  ECLUSE_USER_PASSWORD=... ecluse user add claire --role auditor\n  ecluse user list --json\n',
    );
  user
    .command('add')
    .description('add an account, or set the role and password of an existing one (audited)')
    .argument('<NAME>', 'account name (a-z, 0-9, . _ -)')
    .requiredOption('--role <ROLE>', 'auditor or operator (both read only)')
    .option('--password-stdin', 'read the password from the first line of stdin')
    .addHelpText(
      'after',
      '\nExample:\n  printf "%s\\n" "$PW" | ecluse user add claire --role auditor --password-stdin --json\n',
    )
    .action(async (name: string, o: { role: string; passwordStdin?: boolean }) => {
      await report(ctx(), async () => {
        const password = await readPassword(o.passwordStdin === true);
        const s = openSite(resolveHome(home()));
        try {
          const u = s.db.transaction(() => {
            const created = addUser(s.db, name, o.role, password);
            appendAudit(s.db, {
              kind: 'user.added',
              outcome: 'info',
              message: `web account ${name} set, role ${o.role}`,
              details: { name, role: o.role },
            });
            return created;
          })();
          return { json: { user: u }, human: `account ${u.name} (${u.role}) ready` };
        } finally {
          s.db.close();
        }
      });
    });
  user
    .command('list')
    .description('list the accounts')
    .addHelpText('after', '\nExample:\n  ecluse user list --json\n')
    .action(async () => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const users = listUsers(s.db);
          return {
            json: { users },
            human: users.length ? users.map((u) => `${u.name}\t${u.role}\t${u.created_at}`) : 'no accounts',
          };
        } finally {
          s.db.close();
        }
      });
    });
  user
    .command('remove')
    .description('remove an account and end its sessions (audited)')
    .argument('<NAME>', 'account name')
    .addHelpText('after', '\nExample:\n  ecluse user remove claire --json\n')
    .action(async (name: string) => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          s.db.transaction(() => {
            if (!removeUser(s.db, name)) throw new EcluseError('E_NOT_FOUND', `no account ${name}`);
            appendAudit(s.db, {
              kind: 'user.removed',
              outcome: 'info',
              message: `web account ${name} removed`,
              details: { name },
            });
          })();
          return { json: { removed: name }, human: `account ${name} removed` };
        } finally {
          s.db.close();
        }
      });
    });
}
