/**
 * `ecluse image list|retire|prune`: the store's life at the import station. Images come in only through verified
 * bundles; they leave by retirement (verifier/retirement.ts): audited, listed in the next receipt, bytes deleted last.
 */
import type { Command } from 'commander';
import { parseSubjectName } from '../../sneakernet/subject.js';
import { activePolicy } from '../../verifier/policy/store.js';
import { ruleFor } from '../../verifier/policy/admission.js';
import { compareVersions } from '../../verifier/policy/version-order.js';
import { bundleImageNames, bundleImagesOf, retiredImages } from '../../verifier/retired-images.js';
import { keepNewest, retiredJson, retireImage, type RetiredJson } from '../../verifier/retirement.js';
import { openSite } from '../../verifier/site.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';

/** The lines an operator reads for one retirement. */
function retiredLines(r: RetiredJson): string[] {
  return [
    `retired ${r.name}@${r.version}: ${r.images.length} image(s) removed from the store and the Glance API, ${formatBytes(r.bytes)} freed (audited; the next receipt lists it)`,
    ...r.overridden.map((o) => `  forced although ${o}`),
    ...(r.shown ? [`  ${r.name}@${r.shown.version} (image ${r.shown.id}) is listed again`] : []),
    ...(r.filesLeft.length
      ? [
          `  warning: could not delete the file(s) of ${r.filesLeft.join(', ')}: "ecluse store check --repair" removes them`,
        ]
      : []),
  ];
}

const EXIT =
  '\nExit status: 0 done, 1 refused (E_IMAGE_IN_USE: protected, or a delta base the export station may still\n' +
  'need), 2 bad usage, 3 local failure (E_NOT_FOUND: no such image).\n';

export function registerImage(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const image = program
    .command('image')
    .description('the images the store holds from bundles, and their retirement (import station)');

  image
    .command('list')
    .description(
      'list the images the store holds from bundles, by name and version (newest first), with the policy\n' +
        'rule that keeps them and the versions retired',
    )
    .argument('[NAME]', 'only the versions of this artifact name')
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse image list debian-13 --json\n')
    .action(async (name: string | undefined) => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const policy = activePolicy(s.db);
          const names = name === undefined ? bundleImageNames(s.db) : [name.normalize('NFC')];
          const artifacts = names.map((n) => {
            const images = bundleImagesOf(s.db, n).sort((a, b) => compareVersions(b.version, a.version));
            const rule = ruleFor(policy, n, images[0]?.vendor ?? null);
            return {
              name: n,
              rule: rule?.name ?? null,
              keepNewest: rule?.keepNewest ?? null,
              images: images.map((i) => ({
                id: i.id,
                version: i.version,
                size: i.size,
                sha256: i.sha256,
                listed: i.os_hidden === 0,
                protected: i.protected !== 0,
                bundleId: i.bundle_id,
              })),
            };
          });
          const retired = retiredImages(s.db, 1000, name?.normalize('NFC')).map((r) => ({
            name: r.name,
            version: r.version,
            sha256: r.sha256,
            bytes: r.size,
            reason: r.reason,
            at: r.retired_at,
          }));
          const human: string[] = [];
          for (const a of artifacts) {
            if (a.images.length === 0) continue;
            human.push(
              `${a.name}${a.keepNewest !== null ? ` (policy rule ${a.rule ?? '?'} keeps the newest ${a.keepNewest})` : ''}`,
            );
            for (const i of a.images) {
              human.push(
                `  ${i.version}  image ${i.id}  ${formatBytes(i.size)}${i.listed ? '' : '  (hidden: superseded)'}${i.protected ? '  (protected)' : ''}`,
              );
            }
          }
          if (artifacts.every((a) => a.images.length === 0))
            human.push(
              name ? `the store holds no image named ${name} from a bundle` : 'the store holds no image from a bundle',
            );
          if (retired.length)
            human.push(
              `retired: ${retired
                .slice(0, 20)
                .map((r) => `${r.name}@${r.version} (${r.at})`)
                .join(', ')}${retired.length > 20 ? `, and ${retired.length - 20} more (--json lists them)` : ''}`,
            );
          return { json: { artifacts, retired }, human };
        } finally {
          s.db.close();
        }
      });
    });

  image
    .command('retire')
    .description(
      'retire one version of an image from the store: it leaves the catalog, the Glance API and the web view,\n' +
        'the next receipt lists it as retired (the export station never bases a delta on it again), then its\n' +
        'bytes are deleted; audited. Refused for a protected image, and for one the export station may still\n' +
        'send a delta against (the newest bundle accepted from it, or a refused one it would resend, names it as\n' +
        'a delta base): --force retires it anyway, and that bundle is then replaced. A retired version is never\n' +
        'admitted again as new (E_ROLLBACK). Images already pushed to a target Glance stay there.',
    )
    .argument('<NAME@VERSION>', 'the artifact, as "ecluse image list" shows it (the name is before the last @)')
    .option('--force', 'retire it even if the export station may still send a delta against it')
    .addHelpText(
      'after',
      `${EXIT}\nExample:\n  ecluse --home /var/lib/ecluse image retire "debian-13@20261101"\n  ecluse --home /var/lib/ecluse receipt export --to /media/usb0\n`,
    )
    .action(async (ref: string, o: { force?: boolean }) => {
      await report(ctx(), async () => {
        const wanted = parseSubjectName(ref);
        const s = openSite(resolveHome(home()));
        try {
          const r = retiredJson(await retireImage(s, wanted, { force: o.force === true }));
          return { json: { retired: r }, human: retiredLines(r) };
        } finally {
          s.db.close();
        }
      });
    });

  image
    .command('prune')
    .description(
      "apply the policy's keepNewest now (it also applies after every import): for each name whose rule sets it,\n" +
        'retire the versions beyond the newest N (version order), as "image retire" does; a version that may\n' +
        'not be retired now is kept and named',
    )
    .addHelpText(
      'after',
      '\nA policy rule keeping the newest 2 versions of every Debian image:\n' +
        '  {"version": 1, "rules": [{"name": "debian", "artifacts": ["debian-*"], "keepNewest": 2}]}\n' +
        '\nExit status: 0 done (kept versions are named, not an error), 2 bad usage, 3 local failure.\n' +
        '\nExample:\n  ecluse --home /var/lib/ecluse policy apply policy.json\n  ecluse --home /var/lib/ecluse image prune --json\n',
    )
    .action(async () => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const p = await keepNewest(s);
          const retired = p.retired.map(retiredJson);
          return {
            json: { retired, kept: p.kept },
            human: [
              ...retired.flatMap(retiredLines),
              ...p.kept.map((k) => `kept ${k.name}@${k.version}: ${k.why}`),
              ...(retired.length === 0 && p.kept.length === 0
                ? ["nothing to retire: every name is within its policy rule's keepNewest (or the rule sets none)"]
                : []),
            ],
          };
        } finally {
          s.db.close();
        }
      });
    });
}
