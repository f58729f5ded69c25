/**
 * What the export station knows of one destination site: its chain of bundles, and, once its import station sends
 * receipts, which of them it accepted, refused (with the code) or never got (a gap), and which artifacts its policy
 * refused. `ecluse relay sites`, the selection of the next export and the acknowledgement rule all read this.
 */
import type { ExportRow, RelayHome } from './catalog.js';
import { chainOf } from './chains.js';
import { acknowledgement, type Acknowledgement } from './receipts/acknowledgement.js';

/** What became of a bundle at its site, as far as the newest receipt tells. */
export type BundleFate =
  /** The site accepted it (at or below the acknowledged sequence, and not a gap). */
  | 'accepted'
  /** The receipt lists it refused (above the acknowledged sequence, or a gap refused with a code). */
  | 'refused'
  /** A gap below the acknowledged sequence that never arrived. */
  | 'missing'
  /** No receipt says anything of it yet. */
  | 'on its way';

export interface BundleState {
  sequence: number;
  bundleId: string;
  created: string;
  expires: string;
  fate: BundleFate;
  /** The refusal code, when refused. */
  code: string | null;
  message: string | null;
}

export interface RefusedArtifact {
  name: string;
  version: string;
  sha256: string;
  /** The policy rule that refused it, when the receipt names one. */
  rule: string | null;
  code: string;
}

export interface SiteState {
  site: string;
  receipt: { number: number; issued: string } | null;
  /** The highest sequence of this station's chain for the site that the site accepted (0: none; null: no receipt). */
  acknowledged: number | null;
  lastWritten: number;
  bundles: BundleState[];
  /** Artifacts the site's policy refused (E_NOT_ALLOWED): the next export leaves them out. */
  refusedByPolicy: RefusedArtifact[];
  ack: Acknowledgement | null;
}

/** Refusal codes that are about the artifact itself, not the bundle: sending it again gets the same answer. */
const ARTIFACT_REFUSALS = new Set(['E_NOT_ALLOWED']);

export function siteState(home: RelayHome, site: string): SiteState {
  const ack = acknowledgement(home.db, site, home.station);
  const chain = chainOf(home.db, site);
  return {
    site,
    receipt: ack ? { number: ack.number, issued: ack.issued } : null,
    acknowledged: ack ? ack.sequence : null,
    lastWritten: chain.at(-1)?.sequence ?? 0,
    bundles: chain.map((row) => bundleState(home, row, ack)),
    refusedByPolicy: ack ? refusedArtifacts(ack) : [],
    ack,
  };
}

function bundleState(home: RelayHome, row: ExportRow, ack: Acknowledgement | null): BundleState {
  const base = { sequence: row.sequence, bundleId: row.bundle_id, created: row.created, expires: row.expires };
  const unknown = { ...base, fate: 'on its way' as const, code: null, message: null };
  if (!ack) return unknown;
  const refusal = ack.refused.findLast(
    (r) => r.bundleId === row.bundle_id && (r.station === null || r.station === home.station),
  );
  if (row.sequence <= ack.sequence) {
    const gap = ack.gaps.find((g) => g.sequence === row.sequence);
    if (!gap) return { ...base, fate: 'accepted', code: null, message: null };
    if (gap.refusedWith === null) return { ...base, fate: 'missing', code: null, message: null };
    return { ...base, fate: 'refused', code: gap.refusedWith, message: refusal?.message ?? null };
  }
  if (refusal) return { ...base, fate: 'refused', code: refusal.code, message: refusal.message };
  return unknown;
}

function refusedArtifacts(ack: Acknowledgement): RefusedArtifact[] {
  const out = new Map<string, RefusedArtifact>();
  for (const r of ack.refused) {
    if (!ARTIFACT_REFUSALS.has(r.code)) continue;
    for (const a of r.artifacts ?? []) {
      // What the site holds now was admitted after all (its policy changed): no longer refused.
      if (ack.inventory.has(a.sha256)) continue;
      out.set(a.sha256, { name: a.name, version: a.version, sha256: a.sha256, rule: a.rule, code: r.code });
    }
  }
  return [...out.values()];
}
