/**
 * `ecluse site cert`: exports the import station's image-signing certificate (for the site's Barbican, so Nova with
 * `verify_glance_signatures = true` accepts what écluse verified), and records the uuid Barbican gave it.
 */
import fs from 'node:fs';
import crypto from 'node:crypto';
import type { Command } from 'commander';
import { EcluseError } from '../../sneakernet/errors.js';
import { appendAudit } from '../../verifier/audit.js';
import { imageSigner, setCertificateUuid, signingPaths } from '../../verifier/image-signature.js';
import { openSite } from '../../verifier/site.js';
import { resolveHome } from '../home.js';
import { report, type CommandContext } from '../output.js';

export function registerSiteCert(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const site = program.commands.find((c) => c.name() === 'site') ?? program.command('site');
  site
    .command('cert')
    .description("export this station's image-signing certificate (made at first use) for the site's Barbican")
    .option('--out <FILE>', 'write the certificate here (default: PEM on stdout)')
    .option('--der', 'DER (what Barbican stores for img_signature_certificate_uuid)')
    .option('--pem', 'PEM (the default)')
    .option(
      '--uuid <UUID>',
      'record the uuid Barbican gave the certificate secret; images promoted from now on name it',
    )
    .addHelpText(
      'after',
      '\nExample:\n  ecluse site cert --der --out ecluse-signing.der\n' +
        '  openstack secret store --name ecluse-signing --secret-type certificate --payload-content-type ' +
        '\'application/octet-stream\' --payload-content-encoding base64 --payload "$(base64 -w0 ecluse-signing.der)"\n' +
        '  ecluse site cert --uuid <the uuid at the end of the secret href>\n',
    )
    .action(async (o: { out?: string; der?: boolean; pem?: boolean; uuid?: string }) => {
      await report(ctx(), async () => {
        if (o.der && o.pem) throw new EcluseError('E_USAGE', '--der and --pem are exclusive');
        if (o.der && !o.out) throw new EcluseError('E_USAGE', '--der needs --out FILE');
        const s = openSite(resolveHome(home()));
        try {
          if (o.uuid !== undefined) {
            try {
              setCertificateUuid(s.db, o.uuid);
            } catch (e) {
              throw new EcluseError('E_USAGE', (e as Error).message);
            }
            appendAudit(s.db, {
              kind: 'site.cert.uuid',
              outcome: 'info',
              message: `image-signing certificate recorded as Barbican secret ${o.uuid}`,
              details: { uuid: o.uuid },
            });
          }
          const signer = await imageSigner(s.db, s.home.root, s.siteId);
          const x509 = new crypto.X509Certificate(signer.certPem);
          const data = o.der ? x509.raw : Buffer.from(signer.certPem);
          if (o.out) fs.writeFileSync(o.out, data);
          const fingerprint = x509.fingerprint256.replace(/:/g, '').toLowerCase();
          return {
            json: {
              certificate: o.out ?? null,
              format: o.der ? 'der' : 'pem',
              pem: o.out ? undefined : signer.certPem,
              uuid: signer.certUuid,
              subject: x509.subject,
              notAfter: x509.validTo,
              sha256: fingerprint,
              key: signingPaths(s.home.root).key,
            },
            human: o.out
              ? `certificate written to ${o.out} (${o.der ? 'DER' : 'PEM'}, sha256 ${fingerprint}); img_signature_certificate_uuid ${signer.certUuid}`
              : signer.certPem.trimEnd(),
          };
        } finally {
          s.db.close();
        }
      });
    });
}
