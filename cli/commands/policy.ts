/** `ecluse policy show|check|apply` and `ecluse store check`: the import station's admission policy and store health. */
import type { Command } from 'commander';
import { EcluseError } from '../../sneakernet/errors.js';
import { activePolicy, applyPolicy, readPolicyFile } from '../../verifier/policy/store.js';
import { openSite } from '../../verifier/site.js';
import { checkStore } from '../../verifier/store-check.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';
import type { Policy } from '../../verifier/policy/schema.js';

const EXAMPLE_POLICY = `
A policy file (YAML or JSON); the first rule whose globs match an artifact decides for it:
  version: 1
  verifyAllDigests: false   # true: recompute md5 and sha512 too, instead of taking the signed ones (slower)
  rules:
    - name: debian
      artifacts: ["debian-*"]
      vendors: ["debian"]
      diskFormats: [qcow2, raw]
      maxSize: 20G
      signers: [alice, bob]
      visibility: public
      keepNewest: 3         # keep the 3 newest versions of each name; older ones are retired (ecluse image prune)
    - name: appliance
      artifacts: ["acme-*"]
      allowDowngrade: true
    - name: staging-images
      artifacts: ["ubuntu-*"]
      vendors: ["canonical"]
      vendorKeys: ["-----BEGIN CERTIFICATE-----\n..."]   # or PEM/OpenPGP public keys
    - name: containers
      artifacts: ["*"]
      types: [oci-image]           # a rule without types admits VM images only
      repositories: ["acme/*"]     # globs on the repository served inside (HOST:PORT/acme/app:1.4)
      platforms: ["linux/amd64", "linux/arm64"]    # every platform carried must match one (any variant if none named)
      maxSize: 2G                  # every blob of the image, carried or already held
      vendorKeys: ["-----BEGIN PUBLIC KEY-----\n..."]   # the vendor's cosign key (PEM)
An artifact no rule matches is refused (E_NOT_ALLOWED). Without a policy, every artifact is admitted.
vendors match the --vendor given at the export station without regard to case (debian, Debian and DEBIAN are one).
vendorKeys (armored OpenPGP public keys, PEM public keys, PEM certificates) make the station re-verify the vendor
evidence each artifact carries: OpenPGP checksum files, Sigstore bundles, Glance image signatures; for container
images, the cosign signature of the manifest digest. Container images are refused by version per repository
(E_ROLLBACK for a version not newer than the one the repository holds, unless allowDowngrade).`;

function describe(p: Policy): string[] {
  const digests = p.verifyAllDigests ? ['  every digest (sha256, sha512, md5) recomputed over the bytes'] : [];
  return digests.concat(
    p.rules.map(
      (r) =>
        `  rule ${r.name}: ${r.artifacts.join(', ')} from ${r.vendors.join(', ')}` +
        `${r.types.length > 1 || r.types[0] !== 'vm-image' ? `, types ${r.types.join('/')}` : ''}` +
        `${r.repositories ? `, repositories ${r.repositories.join('/')}` : ''}${r.platforms ? `, platforms ${r.platforms.join('/')}` : ''}` +
        `${r.diskFormats ? `, formats ${r.diskFormats.join('/')}` : ''}${r.maxSize !== undefined ? `, at most ${r.maxSize}` : ''}` +
        `${r.signers ? `, signed by ${r.signers.join('/')}` : ''}, ${r.visibility}${r.allowDowngrade ? ', downgrade allowed' : ''}` +
        `${r.keepNewest !== undefined ? `, keeps the newest ${r.keepNewest} version(s)` : ''}`,
    ),
  );
}

export function registerPolicy(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const policy = program.command('policy').description('the import station admission policy (allowlist)');
  policy
    .command('show')
    .description('show the policy in force and its digest')
    .addHelpText('after', `\nExample:\n  ecluse policy show --json\n${EXAMPLE_POLICY}\n`)
    .action(async () => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const a = activePolicy(s.db);
          return {
            json: { source: a.source, digest: a.digest, policy: a.policy },
            human: [`${a.source} policy ${a.digest}`, ...describe(a.policy)],
          };
        } finally {
          s.db.close();
        }
      });
    });
  policy
    .command('check')
    .description('validate a policy file without applying it')
    .argument('<FILE>', 'policy file (YAML or JSON)')
    .addHelpText('after', `\nExample:\n  ecluse policy check site-policy.yaml\n${EXAMPLE_POLICY}\n`)
    .action(async (file: string) => {
      await report(ctx(), async () => {
        const p = readPolicyFile(file);
        return {
          json: { digest: p.digest, policy: p.policy },
          human: [`${file}: valid, digest ${p.digest}`, ...describe(p.policy)],
        };
      });
    });
  policy
    .command('apply')
    .description('validate a policy file and put it in force (audited with the old and new digests)')
    .argument('<FILE>', 'policy file (YAML or JSON)')
    .addHelpText(
      'after',
      `\nExample:\n  ecluse --home /var/lib/ecluse policy apply site-policy.yaml\n${EXAMPLE_POLICY}\n`,
    )
    .action(async (file: string) => {
      await report(ctx(), async () => {
        const p = readPolicyFile(file);
        const s = openSite(resolveHome(home()));
        try {
          const r = applyPolicy(s.db, p, file);
          return { json: r, human: `policy ${r.current.slice(0, 16)} in force (was ${r.previous.slice(0, 16)})` };
        } finally {
          s.db.close();
        }
      });
    });

  const store = program.command('store').description('the import station image store');
  store
    .command('check')
    .description('compare the catalog with the image files and their hashes; find orphans left by a crash')
    .option('--repair', 'remove orphaned files and staging left by a crash (never an image the catalog names)')
    .option('--quick', 'check presence and sizes only, not digests')
    .addHelpText(
      'after',
      '\nExit status: 0 consistent (or repaired), 1 problems remain (E_STORE).\n\nExample:\n  ecluse store check --repair --json\n',
    )
    .action(async (o: { repair?: boolean; quick?: boolean }) => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const r = await checkStore(s, { repair: o.repair ?? false, quick: o.quick ?? false });
          const remaining = r.problems.filter((p) => !p.repaired);
          if (remaining.length > 0) {
            throw new EcluseError(
              'E_STORE',
              `${remaining.length} problem(s): ${remaining.map((p) => `${p.kind} ${p.image ?? p.path} (${p.detail})`).join('; ')}`,
              {
                check: 'store',
                problems: remaining,
              },
            );
          }
          return {
            json: r,
            human: [
              `${r.images} image(s), ${formatBytes(r.checkedBytes)} hashed: consistent`,
              ...r.problems.map((p) => `  repaired ${p.kind}: ${p.path}`),
            ],
          };
        } finally {
          s.db.close();
        }
      });
    });
}
