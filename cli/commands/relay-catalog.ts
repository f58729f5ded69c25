/** `ecluse relay sites|list|remove|events`: what each site has, the catalog, and the relay's own records. */
import type { Command } from 'commander';
import { openRelayHome, type RelayHome } from '../../relay/catalog.js';
import { listCatalog, removeArtifact } from '../../relay/catalog-admin.js';
import { knownSites } from '../../relay/chains.js';
import { listEvents } from '../../relay/events.js';
import { planExport } from '../../relay/export-plan.js';
import { siteState, type BundleState } from '../../relay/site-state.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';

/** What `relay sites --json` says of one site. */
export interface SiteReport {
  site: string;
  receipt: { number: number; issued: string } | null;
  lastAccepted: { sequence: number; bundleId: string } | null;
  lastWritten: number;
  refused: Array<{ sequence: number; bundleId: string; code: string | null; message: string | null }>;
  missing: Array<{ sequence: number; bundleId: string }>;
  onItsWay: Array<{ sequence: number; bundleId: string }>;
  refusedByPolicy: Array<{ name: string; version: string; sha256: string; rule: string | null; code: string }>;
  /** Artifacts the site retired from its store (its newest receipt's `retired`): not sent again, never a delta base. */
  retiredThere: Array<{ name: string; version: string; sha256: string; at: string }>;
  /** What `ecluse export --site SITE` would do now: the artifacts it carries, those it leaves out, or its refusal. */
  nextExport: {
    sequence: number;
    artifacts: Array<{ name: string; version: string }>;
    leftOut: Array<{ name: string; version: string }>;
    refusal: { code: string; message: string } | null;
  };
}

const ids = (bs: BundleState[]) => bs.map((b) => ({ sequence: b.sequence, bundleId: b.bundleId }));

async function siteReport(h: RelayHome, site: string): Promise<SiteReport> {
  const s = siteState(h, site);
  const accepted = s.bundles.filter((b) => b.fate === 'accepted').at(-1);
  const { plan } = await planExport(h, {
    mode: { kind: 'fresh' },
    site,
    media: [],
    mediaBytes: 4 * 1024 ** 3,
    signers: 1,
    expiresInMs: 0,
    all: false,
    force: false,
    includeRefused: false,
    noEvidence: false,
    noDelta: true,
  });
  return {
    site,
    receipt: s.receipt,
    lastAccepted: accepted ? { sequence: accepted.sequence, bundleId: accepted.bundleId } : null,
    lastWritten: s.lastWritten,
    refused: s.bundles
      .filter((b) => b.fate === 'refused')
      .map((b) => ({ sequence: b.sequence, bundleId: b.bundleId, code: b.code, message: b.message })),
    missing: ids(s.bundles.filter((b) => b.fate === 'missing')),
    onItsWay: ids(s.bundles.filter((b) => b.fate === 'on its way')),
    refusedByPolicy: s.refusedByPolicy,
    retiredThere: s.ack?.retired ?? [],
    nextExport: {
      sequence: plan.sequence,
      artifacts: plan.artifacts.map((a) => ({ name: a.name, version: a.version })),
      leftOut: plan.leftOut.map((a) => ({ name: a.name, version: a.version })),
      refusal: plan.refusal ? { code: plan.refusal.code, message: plan.refusal.message } : null,
    },
  };
}

function siteLines(r: SiteReport): string[] {
  const lines = [`site ${r.site}: this station wrote #${r.lastWritten}`];
  if (r.receipt === null) lines.push('  no receipt taken yet (ecluse relay receipt import MEDIA)');
  else lines.push(`  receipt ${r.receipt.number} (${r.receipt.issued})`);
  if (r.lastAccepted) lines.push(`  last bundle accepted: #${r.lastAccepted.sequence} (${r.lastAccepted.bundleId})`);
  for (const b of r.refused) lines.push(`  refused: #${b.sequence} ${b.code ?? ''} ${b.message ?? ''}`.trimEnd());
  for (const b of r.missing)
    lines.push(`  missing: #${b.sequence} never arrived (a gap; the next export carries what it lacked)`);
  for (const b of r.onItsWay) lines.push(`  on its way: #${b.sequence} (no receipt says anything of it yet)`);
  for (const a of r.refusedByPolicy) {
    lines.push(`  refused by policy: ${a.name} ${a.version}${a.rule === null ? '' : ` (rule ${a.rule})`}`);
  }
  if (r.retiredThere.length > 0) {
    const shown = r.retiredThere.slice(0, 10).map((a) => `${a.name} ${a.version}`);
    lines.push(
      `  retired there: ${shown.join(', ')}${r.retiredThere.length > 10 ? `, and ${r.retiredThere.length - 10} more` : ''} (never sent again, never a delta base)`,
    );
  }
  const n = r.nextExport;
  if (n.refusal) lines.push(`  next export: ${n.refusal.code}: ${n.refusal.message}`);
  else
    lines.push(`  next export #${n.sequence} carries: ${n.artifacts.map((a) => `${a.name} ${a.version}`).join(', ')}`);
  if (n.leftOut.length > 0) {
    lines.push(
      `  and leaves out: ${n.leftOut.map((a) => `${a.name} ${a.version}`).join(', ')} (--include-refused sends them)`,
    );
  }
  return lines;
}

export function registerCatalog(relay: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const withHome = async <T>(f: (h: RelayHome) => Promise<T> | T): Promise<T> => {
    const h = openRelayHome(resolveHome(home()));
    try {
      return await f(h);
    } finally {
      h.db.close();
    }
  };
  relay
    .command('sites')
    .description(
      'per site: last bundle accepted, bundles refused or missing, artifacts refused or retired there, the next export',
    )
    .option('--site <SITE_ID>', 'only this site')
    .addHelpText(
      'after',
      '\nRead after `ecluse relay receipt import MEDIA`.\n\nExample:\n  ecluse relay sites --json\n',
    )
    .action(async (o: { site?: string }) => {
      await report(ctx(), () =>
        withHome(async (h) => {
          const sites = o.site === undefined ? knownSites(h.db) : [o.site];
          const reports: SiteReport[] = [];
          for (const s of sites) reports.push(await siteReport(h, s));
          const human = reports.flatMap(siteLines);
          if (human.length === 0) human.push('no site yet: ecluse export --site SITE writes the first bundle');
          return { json: { sites: reports }, human };
        }),
      );
    });
  relay
    .command('list')
    .description('the catalog: every artifact and, per site, delivered / on its way / refused / not yet exported')
    .option('--site <SITE_ID>', 'only this site')
    .addHelpText('after', '\nExample:\n  ecluse relay list --site paris-1\n')
    .action(async (o: { site?: string }) => {
      await report(ctx(), () =>
        withHome((h) => {
          const c = listCatalog(h, o.site);
          const human = c.artifacts.map((a) => {
            const per = Object.entries(a.sites).map(([s, d]) => `${s}: ${d}`);
            const kind =
              a.type === 'oci-image'
                ? '  container image'
                : a.type === 'ecluse-package'
                  ? "  écluse's own package"
                  : '';
            return `${a.name} ${a.version}${kind}  ${formatBytes(a.size)}  ${a.sha256.slice(0, 12)}  ${per.join(', ')}`;
          });
          if (human.length === 0) human.push('the catalog is empty (ecluse relay add FILE, ecluse relay fetch)');
          return { json: c, human };
        }),
      );
    });
  relay
    .command('remove')
    .description('remove an artifact from the catalog (and its stored copy), recorded in the relay events')
    .argument('<NAME@VERSION>')
    .option('--force', 'remove it even though a bundle not acknowledged yet carries it')
    .addHelpText('after', '\nExample:\n  ecluse relay remove debian-13@20261101\n')
    .action(async (ref: string, o: { force?: boolean }) => {
      await report(ctx(), () =>
        withHome((h) => {
          const r = removeArtifact(h, ref, o.force ?? false);
          const human = [`removed ${r.name} ${r.version} (${formatBytes(r.size)}, sha256 ${r.sha256.slice(0, 16)}…)`];
          for (const b of r.stillCarriedBy)
            human.push(`  bundle #${b.sequence} for site ${b.site} still carries it: it cannot be resent`);
          return { json: { removed: r }, human };
        }),
      );
    });
  relay
    .command('events')
    .description("the export station's own record: bundles written and replaced, artifacts removed, receipts taken")
    .option('--limit <N>', 'how many of the newest events', '100')
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse-relay relay events --limit 20 --json\n')
    .action(async (o: { limit: string }) => {
      await report(ctx(), () =>
        withHome((h) => {
          const events = listEvents(h.db, Math.max(1, Number.parseInt(o.limit, 10) || 100));
          return {
            json: { events },
            human: events.map((e) => `${e.at} ${e.kind} ${e.site ?? '-'} ${e.subject ?? ''}`.trimEnd()),
          };
        }),
      );
    });
}
