/**
 * `ecluse audit ...`: the tamper-evident audit log.
 *   verify          recompute the Merkle tree and check every signed checkpoint (first bad index on failure)
 *   checkpoint      sign a checkpoint now (a systemd timer or cron may run it hourly; `serve` also does)
 *   export          carry the log out: events, signed checkpoint, consistency proof from the previous export
 *   verify-export   check an export on any machine with the audit public key
 *   key             print the audit public key (PEM)
 * A failed verification exits 1 with `{"ok":false,"code":"E_AUDIT_...","message","check","index"}` under --json.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { asEcluseError, exitCodeFor } from '../../sneakernet/errors.js';
import { openDb } from '../../verifier/db.js';
import { parseCheckpointFile, signCheckpoint, syncLatestFile } from '../../verifier/audit/checkpoint.js';
import { exportAudit } from '../../verifier/audit/export.js';
import { ensureAuditKey, publicKeyFromPem } from '../../verifier/audit/key.js';
import { verifyLog } from '../../verifier/audit/verify.js';
import { verifyExport } from '../../verifier/audit/verify-export.js';
import { openSite } from '../../verifier/site.js';
import { resolveHome } from '../home.js';
import type { CommandContext, Human } from '../output.js';

/** Like cli/output.ts `report`, but a failure also carries the first bad `index` (and `range`) when known. */
async function auditReport<T extends object>(
  ctx: CommandContext,
  body: () => Promise<{ json: T; human: Human }>,
): Promise<void> {
  try {
    const { json, human } = await body();
    process.stdout.write(
      ctx.json
        ? `${JSON.stringify({ ok: true, ...json })}\n`
        : `${(Array.isArray(human) ? human : [human]).join('\n')}\n`,
    );
    process.exitCode = 0;
  } catch (e) {
    const err = asEcluseError(e);
    if (ctx.json) {
      const extra: Record<string, unknown> = {};
      for (const k of ['check', 'index', 'range'] as const) if (err.context[k] !== undefined) extra[k] = err.context[k];
      process.stdout.write(`${JSON.stringify({ ok: false, code: err.code, message: err.message, ...extra })}\n`);
    }
    process.stderr.write(`${err.line()}\n`);
    process.exitCode = exitCodeFor(err.code);
  }
}

function withSite<T>(home: string | undefined, f: (db: ReturnType<typeof openDb>, root: string) => T): T {
  const s = openSite(resolveHome(home));
  try {
    return f(s.db, s.home.root);
  } finally {
    s.db.close();
  }
}

export function registerAudit(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const audit = program
    .command('audit')
    .description('the tamper-evident audit log (Merkle tree, signed checkpoints)')
    .addHelpText(
      'after',
      '\nExamples:\n  ecluse audit verify --json\n  ecluse audit export --to /media/usb0/audit\n' +
        '  ecluse audit verify-export /media/usb0/audit --key site-audit.pem --previous last/checkpoint.json\n',
    );

  audit
    .command('verify')
    .description('recompute the log and check every signed checkpoint; names the first bad index')
    .addHelpText(
      'after',
      '\nExit status: 0 intact, 1 tampered (E_AUDIT_TAMPERED edited, E_AUDIT_MISSING deleted/truncated,\n' +
        'E_AUDIT_ORDER reordered, E_AUDIT_CHECKPOINT forged checkpoint), 3 local failure.\n\nExample:\n  ecluse --home /var/lib/ecluse audit verify --json\n',
    )
    .action(async () => {
      await auditReport(ctx(), async () =>
        withSite(home(), (db, root) => {
          const s = verifyLog(db, root);
          return {
            json: s,
            human: `audit log intact: ${s.size} events, root ${s.root.slice(0, 16)}, ${s.checkpoints} signed checkpoint(s)${s.latest ? `, latest of size ${s.latest.size} at ${s.latest.time}` : ''}`,
          };
        }),
      );
    });

  audit
    .command('checkpoint')
    .description('sign a checkpoint of the log now')
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse audit checkpoint --json\n')
    .action(async () => {
      await auditReport(ctx(), async () =>
        withSite(home(), (db, root) => {
          const c = db.transaction(() => signCheckpoint(db, root, 'manual')).immediate();
          syncLatestFile(db, root);
          const { id: _i, reason: _r, ...checkpoint } = c;
          return {
            json: { checkpoint },
            human: `checkpoint signed: ${c.origin} size ${c.size} root ${c.root.slice(0, 16)} at ${c.time}`,
          };
        }),
      );
    });

  audit
    .command('export')
    .description('write the events, a signed checkpoint and a consistency proof from the previous export to DIR')
    .requiredOption('--to <DIR>', 'folder to write the export to (e.g. removable media)')
    .option('--since <CHECKPOINT>', 'checkpoint.json of an earlier export: write only the events after it')
    .addHelpText(
      'after',
      '\nExample:\n  ecluse audit export --to /media/usb0/audit-2026-11 --since /media/usb0/audit-2026-10/checkpoint.json\n',
    )
    .action(async (o: { to: string; since?: string }) => {
      await auditReport(ctx(), async () => {
        const since = o.since ? parseCheckpointFile(o.since) : undefined;
        return withSite(home(), (db, root) => {
          const r = exportAudit(db, root, { to: o.to, ...(since ? { since } : {}) });
          return {
            json: r,
            human: [
              `exported events ${r.firstIndex}..${r.firstIndex + r.events - 1} of ${r.checkpoint.origin} to ${r.dir}`,
              `  checkpoint size ${r.checkpoint.size} root ${r.checkpoint.root.slice(0, 16)}`,
              r.consistencyFrom
                ? `  consistency proof from size ${r.consistencyFrom.size}`
                : '  first export: no consistency proof',
            ],
          };
        });
      });
    });

  audit
    .command('verify-export')
    .description('verify an audit export on any machine: signatures, every event, append-only since --previous')
    .argument('<DIR>', 'the export folder')
    .requiredOption('--key <PEM>', 'the audit public key (from "ecluse audit key", obtained independently)')
    .option('--previous <CHECKPOINT>', 'checkpoint.json of the previous export you verified')
    .addHelpText(
      'after',
      '\nExample:\n  ecluse audit verify-export /media/usb0/audit-2026-11 --key paris-1-audit.pem --previous audit-2026-10/checkpoint.json\n',
    )
    .action(async (dir: string, o: { key: string; previous?: string }) => {
      await auditReport(ctx(), async () => {
        const key = publicKeyFromPem(fs.readFileSync(o.key, 'utf8'));
        const r = await verifyExport(dir, key, o.previous);
        return {
          json: r,
          human: [
            `export of ${r.origin} verified: events ${r.firstIndex}..${r.checkpoint.size - 1}, root ${r.checkpoint.root.slice(0, 16)}, signed ${r.checkpoint.time}`,
            r.consistentWith
              ? `  append-only since the checkpoint of size ${r.consistentWith.size}`
              : '  no previous checkpoint given',
          ],
        };
      });
    });

  audit
    .command('key')
    .description('print the audit public key (PEM), to verify exports outside')
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse audit key > paris-1-audit.pem\n')
    .action(async () => {
      await auditReport(ctx(), async () =>
        withSite(home(), (_db, root) => {
          const k = ensureAuditKey(root);
          return { json: { keyId: k.keyId, publicKey: k.publicPem }, human: k.publicPem.trimEnd() };
        }),
      );
    });
}
