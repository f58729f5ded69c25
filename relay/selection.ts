/**
 * What the next bundle for a site carries ("what this site still lacks"), and the acknowledgement rule. Both read the
 * site's chain and what its newest receipt says of each bundle (relay/site-state.ts).
 *
 * Without a receipt from the site: every artifact no bundle of its chain carried (or everything, with `all`).
 * With one: every artifact its inventory lacks, except what bundles accepted there carried (the site had it and
 * deleted it: it would be refused as a rollback) and what bundles still on their way carry. What bundles refused or
 * missing there carried travels again. Artifacts the site's policy refused are left out, unless the operator forces
 * them in.
 */
import { EcluseError } from '../sneakernet/errors.js';
import type { ArtifactRow, RelayHome } from './catalog.js';
import { carriedBy } from './chains.js';
import type { BundleState, SiteState } from './site-state.js';
import { artifactsByAge } from './artifacts.js';

export interface LeftOut {
  name: string;
  version: string;
  sha256: string;
  /** Why it stays out: the site refused it by policy (`code`, `rule`). */
  reason: 'refused by the site policy';
  code: string;
  rule: string | null;
}

export interface Selection {
  rows: ArtifactRow[];
  leftOut: LeftOut[];
  /** What the selection is based on, for the operator. */
  basis: string;
}

/**
 * `chainBelow`: the bundles of the chain that stay (with `--replace N`, those below N; the others carry nothing
 * anymore).
 */
export function selectForSite(
  home: RelayHome,
  state: SiteState,
  chainBelow: number,
  o: { all: boolean; includeRefused: boolean },
): Selection {
  const chain = state.bundles.filter((b) => b.sequence < chainBelow);
  const all = artifactsByAge(home.db);
  const carried = (fates: ReadonlyArray<BundleState['fate']>) =>
    new Set(chain.filter((b) => fates.includes(b.fate)).flatMap((b) => carriedBy(home.db, b.bundleId)));
  let rows: ArtifactRow[];
  let basis: string;
  if (o.all) {
    rows = all;
    basis = 'the whole catalog (--all)';
  } else if (!state.ack) {
    const sent = carried(['accepted', 'refused', 'missing', 'on its way']);
    rows = all.filter((r) => !sent.has(r.id));
    basis = `no receipt from site ${state.site} yet: what no bundle for it carried`;
  } else {
    const ack = state.ack;
    const settled = carried(['accepted', 'on its way']);
    // An OCI image's signed sha256 depends on the blobs that travelled with it: the site names it by name@version too.
    const held = (r: ArtifactRow) =>
      ack.inventory.has(r.sha256) || (r.type === 'oci-image' && ack.held.has(`${r.name}@${r.version}`));
    rows = all.filter((r) => !held(r) && !settled.has(r.id));
    basis = `receipt ${ack.number} of site ${state.site} (acknowledges #${ack.sequence})`;
  }
  const refused = new Map(state.refusedByPolicy.map((a) => [a.sha256, a]));
  const leftOut: LeftOut[] = [];
  if (!o.includeRefused) {
    rows = rows.filter((r) => {
      const a = refused.get(r.sha256);
      if (!a) return true;
      leftOut.push({
        name: r.name,
        version: r.version,
        sha256: r.sha256,
        reason: 'refused by the site policy',
        code: a.code,
        rule: a.rule,
      });
      return false;
    });
  }
  return { rows, leftOut, basis };
}

/**
 * Refuses to chain onto bundles the site has not accounted for (when receipts are in use for it): one whose fate no
 * receipt tells yet, or one the site refused (which `--replace` rebuilds; `--force` chains past, and a site with
 * `order: tolerant`, the default, then names it as a gap). Gaps below the acknowledged sequence never block: what
 * they carried travels again in the next bundle.
 */
export function acknowledgementRefusal(state: SiteState, chainBelow: number, force: boolean): EcluseError | null {
  if (!state.ack || force) return null;
  const pending = state.bundles.filter((b) => b.sequence < chainBelow && b.sequence > (state.acknowledged ?? 0));
  const first = pending[0];
  if (!first) return null;
  const s = state.site;
  const refused = pending.find((b) => b.fate === 'refused');
  if (refused) {
    return new EcluseError(
      'E_UNACKNOWLEDGED',
      `site ${s} refused bundle #${refused.sequence} (${refused.code ?? 'refused'}: ${refused.message ?? 'see its receipt'}): replace it with a new bundle #${refused.sequence} built from what the site now holds (ecluse export --replace ${refused.sequence} --site ${s} --to MEDIA), or chain past it with --force (a site with order: tolerant names it as a gap)`,
      { check: 'receipt' },
    );
  }
  const last = pending.at(-1) ?? first;
  return new EcluseError(
    'E_UNACKNOWLEDGED',
    `site ${s} has acknowledged bundle #${state.acknowledged ?? 0} (receipt ${state.ack.number}) but this station last wrote #${last.sequence} for it: import it there and bring a receipt back (ecluse relay receipt import MEDIA), resend it (ecluse export --resend ${first.sequence} --site ${s} --to MEDIA), replace it (ecluse export --replace ${first.sequence} --site ${s} --to MEDIA), or build on it anyway with --force`,
    { check: 'receipt' },
  );
}
