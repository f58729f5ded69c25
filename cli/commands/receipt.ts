/** `ecluse receipt key` and `ecluse receipt export --to MEDIA`: the import station's signed receipts. */
import type { Command } from 'commander';
import fs from 'node:fs';
import { exportReceipt, receiptKey } from '../../verifier/receipts.js';
import { openSite } from '../../verifier/site.js';
import { resolveHome } from '../home.js';
import { report, type CommandContext } from '../output.js';

export function registerReceipt(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const receipt = program.command('receipt').description('signed import receipts, carried back to the export station');
  receipt
    .command('key')
    .description('print (and make, on first use) the receipt public key, for `ecluse relay receipt trust` outside')
    .option('--out <FILE>', 'also write the public key (PEM) to this file')
    .addHelpText(
      'after',
      '\nExample (then carry receipt.pub out: ecluse relay receipt trust receipt.pub --site paris-1):\n' +
        '  ecluse --home /var/lib/ecluse receipt key --out /media/usb0/receipt.pub\n',
    )
    .action(async (o: { out?: string }) => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const k = receiptKey(s);
          if (o.out) await fs.promises.writeFile(o.out, k.publicPem, { mode: 0o644 });
          return {
            json: { site: s.siteId, keyId: k.keyId, publicKey: k.publicPem },
            human: [`receipt key of site ${s.siteId}: ${k.keyId}`, k.publicPem.trimEnd()],
          };
        } finally {
          s.db.close();
        }
      });
    });
  receipt
    .command('export')
    .description(
      'write a signed receipt (accepted bundles, refusals, inventory, retired images) onto media going back out',
    )
    .requiredOption('--to <MEDIA_DIR>', 'where the media is mounted')
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse receipt export --to /media/usb0\n')
    .action(async (o: { to: string }) => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const r = await exportReceipt(s, o.to);
          return {
            json: { receipt: r },
            human: [
              `receipt ${r.number} of site ${s.siteId} written to ${r.file}: ${r.stations.map((x) => `${x.station} #${x.sequence}`).join(', ') || 'no bundle yet'}, ${r.inventory} artifact(s)${r.retired ? `, ${r.retired} retired` : ''}`,
              ...r.gaps.map(
                (g) =>
                  `  gap: ${g.station} #${g.sequence} ${g.refusedWith ? `refused here (${g.refusedWith})` : 'never arrived'}`,
              ),
            ],
          };
        } finally {
          s.db.close();
        }
      });
    });
}
