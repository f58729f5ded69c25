/**
 * The three ways to make a bundle, one resolver each, every one giving the same `Resolved` shape to `planExport`:
 *
 * - fresh: the next bundle of the site's chain, carrying what the site lacks;
 * - resend (`--resend N`): bundle N exactly as recorded (same statement bytes), to be signed again;
 * - replace (`--replace N`): a new bundle in the place of the site's bundle N (and those after it), carrying what the
 *   site lacks now. Only bundles the site has not accepted can be replaced, and not a gap below one it accepted (its
 *   successor names it: a new N would be refused there, E_CHAIN).
 */
import { EcluseError } from '../sneakernet/errors.js';
import { vendorEvidenceSchema } from '../sneakernet/evidence.js';
import { wholeImageArtifact } from './images/export-images.js';
import {
  parseStatement,
  type Artifact,
  type EcluseArtifact,
  type Statement,
  type VmImageArtifact,
} from '../sneakernet/statement.js';
import { ECLUSE_PACKAGE_NAME } from '../sneakernet/ecluse-package.js';
import { packageOf } from './packages.js';
import type { ArtifactRow, ExportRow, RelayHome } from './catalog.js';
import { chainOf, exportAt, exportsNumbered, lastExport } from './chains.js';
import { acknowledgementRefusal, selectForSite, type LeftOut } from './selection.js';
import { siteState, type SiteState } from './site-state.js';
import { artifactNamed, artifactWithBytes } from './artifacts.js';

export interface Resolved {
  site: string;
  sequence: number;
  previous: ExportRow | undefined;
  rows: ArtifactRow[];
  /** The statement artifacts of `rows` (before deltas). */
  artifacts: Artifact[];
  /** A resend: the recorded statement and its bytes. */
  statement: Statement | null;
  payload: Buffer | null;
  basis: string;
  leftOut: LeftOut[];
  replaces: ExportRow[];
  acknowledgement: { receipt: number | null; acknowledged: number | null; lastWritten: number; forced: boolean };
  refusal: EcluseError | null;
}

export function toArtifact(row: ArtifactRow, evidence = true, md5 = true): VmImageArtifact {
  const e = evidence && row.evidence ? { evidence: vendorEvidenceSchema.parse(JSON.parse(row.evidence)) } : {};
  return {
    name: row.name,
    version: row.version,
    type: 'vm-image',
    size: row.size,
    sha256: row.sha256,
    sha512: row.sha512,
    ...(md5 && row.md5 ? { md5: row.md5 } : {}),
    diskFormat: row.disk_format as VmImageArtifact['diskFormat'],
    containerFormat: row.container_format as VmImageArtifact['containerFormat'],
    properties: JSON.parse(row.properties) as Record<string, string>,
    provenance: { vendor: row.vendor, source: row.source, addedAt: row.added_at, ...e },
  };
}

/** An ecluse-package artifact (FORMAT.md 4.10): the catalog row and its `packages` row; no md5, no properties. */
export function toPackageArtifact(home: RelayHome, row: ArtifactRow, evidence = true): EcluseArtifact {
  const e = evidence && row.evidence ? { evidence: vendorEvidenceSchema.parse(JSON.parse(row.evidence)) } : {};
  return {
    name: ECLUSE_PACKAGE_NAME,
    version: row.version,
    type: 'ecluse-package',
    size: row.size,
    sha256: row.sha256,
    sha512: row.sha512,
    diskFormat: 'raw',
    containerFormat: 'bare',
    properties: {},
    provenance: { vendor: row.vendor, source: row.source, addedAt: row.added_at, ...e },
    package: packageOf(home.db, row.id),
  };
}

interface Choices {
  site?: string;
  all: boolean;
  force: boolean;
  includeRefused: boolean;
  noEvidence: boolean;
  /** Leave the attested md5 (docs/FORMAT.md 4.8) out, for import stations older than 4.8. */
  noMd5?: boolean;
}

function requireSite(site: string | undefined): string {
  if (!site) throw new EcluseError('E_USAGE', "required option '--site <SITE_ID>' not specified");
  return site;
}

function ackSummary(state: SiteState, force: boolean): Resolved['acknowledgement'] {
  return {
    receipt: state.receipt?.number ?? null,
    acknowledged: state.acknowledged,
    lastWritten: state.lastWritten,
    forced: force,
  };
}

/** The next bundle of the site's chain. */
export function resolveFresh(home: RelayHome, o: Choices): Resolved {
  const site = requireSite(o.site);
  return newBundleFrom(home, site, siteState(home, site), Number.MAX_SAFE_INTEGER, o);
}

/** A new bundle in the place of the site's bundle `n` and every one after it. */
export function resolveReplace(home: RelayHome, n: number, o: Choices): Resolved {
  const site = requireSite(o.site);
  const state = siteState(home, site);
  const target = exportAt(home.db, site, n);
  if (!target) {
    throw new EcluseError(
      'E_NOT_FOUND',
      `this station has no bundle #${n} for site ${site} to replace (its chain for ${site} ends at #${state.lastWritten})`,
    );
  }
  const fate = state.bundles.find((b) => b.sequence === n)?.fate;
  if (state.acknowledged !== null && n <= state.acknowledged) {
    if (fate === 'refused' || fate === 'missing') {
      throw new EcluseError(
        'E_USAGE',
        `bundle #${n} of site ${site} is a gap below #${state.acknowledged}, which the site accepted and which names #${n} as its predecessor: a new #${n} would be refused there (E_CHAIN); resend it as it was (ecluse export --resend ${n} --site ${site} --to MEDIA), or let the next export carry what it lacked (ecluse export --site ${site} --to MEDIA)`,
      );
    }
    throw new EcluseError(
      'E_USAGE',
      `site ${site} has already imported bundle #${n} (its receipt acknowledges #${state.acknowledged}): it cannot be replaced`,
    );
  }
  return newBundleFrom(home, site, state, n, o);
}

/**
 * A new bundle of the site's chain that takes the place of bundle `from` and every one after it (none, for the next
 * bundle: `from` past the end); it carries what the site lacks, by the bundles written before `from`.
 */
function newBundleFrom(home: RelayHome, site: string, state: SiteState, from: number, o: Choices): Resolved {
  const previous = lastExport(home.db, site, from);
  const sel = selectForSite(home, state, from, o);
  return {
    site,
    // N itself in a contiguous chain; in a chain migrated from one shared sequence, the number after the previous one.
    sequence: (previous?.sequence ?? 0) + 1,
    previous,
    rows: sel.rows,
    artifacts: sel.rows.map((r) =>
      r.type === 'oci-image'
        ? wholeImageArtifact(home, r, !o.noEvidence)
        : r.type === 'ecluse-package'
          ? toPackageArtifact(home, r, !o.noEvidence)
          : toArtifact(r, !o.noEvidence, o.noMd5 !== true),
    ),
    statement: null,
    payload: null,
    basis: sel.basis,
    leftOut: sel.leftOut,
    replaces: chainOf(home.db, site).filter((b) => b.sequence >= from),
    acknowledgement: ackSummary(state, o.force),
    refusal: acknowledgementRefusal(state, from, o.force),
  };
}

/**
 * Bundle `n` exactly as first written (same statement bytes: same bundle id, sequence, predecessor, validity,
 * volumes). A bundle whose statement has expired cannot be resent (the import station would refuse it, E_EXPIRED).
 */
export function resendRow(home: RelayHome, n: number, site: string | undefined): ExportRow {
  const rows = site === undefined ? exportsNumbered(home.db, n) : [exportAt(home.db, site, n)].flatMap((r) => r ?? []);
  const [row, other] = rows;
  if (!row) {
    throw new EcluseError(
      'E_NOT_FOUND',
      `this station never wrote bundle #${n}${site === undefined ? '' : ` for site ${site}`}`,
    );
  }
  if (other) {
    throw new EcluseError(
      'E_USAGE',
      `bundle #${n} was written for several sites (${rows.map((r) => r.site).join(', ')}): say which with --site`,
    );
  }
  return row;
}

export function resolveResend(home: RelayHome, n: number, site: string | undefined, now: Date): Resolved {
  const row = resendRow(home, n, site);
  if (!row.statement) {
    throw new EcluseError('E_NOT_FOUND', `bundle #${n} was written before statements were kept: it cannot be resent`);
  }
  const payload = Buffer.from(row.statement);
  const statement = parseStatement(payload);
  if (Date.parse(statement.predicate.expires) <= now.getTime()) {
    throw new EcluseError(
      'E_EXPIRED',
      `bundle #${n} of site ${row.site} expired on ${statement.predicate.expires}; it cannot be resent as it was: replace it (ecluse export --replace ${n} --site ${row.site} --to MEDIA)`,
      { check: 'expiry' },
    );
  }
  const rows = statement.predicate.artifacts.map((a) => {
    // An OCI image's signed sha256 is that of what travelled: it is found by name and version.
    const named = a.type === 'oci-image' ? artifactNamed(home.db, a.name, a.version) : undefined;
    const r =
      a.type === 'oci-image' ? (named?.type === 'oci-image' ? named : undefined) : artifactWithBytes(home.db, a.sha256);
    if (!r) throw new EcluseError('E_NOT_FOUND', `${a.name} ${a.version} of that bundle is no longer in the catalog`);
    return r;
  });
  const state = siteState(home, row.site);
  return {
    site: row.site,
    sequence: row.sequence,
    previous: undefined,
    rows,
    artifacts: statement.predicate.artifacts,
    statement,
    payload,
    basis: `bundle #${n} of site ${row.site} as first written`,
    leftOut: [],
    replaces: [],
    acknowledgement: ackSummary(state, false),
    refusal: null,
  };
}
