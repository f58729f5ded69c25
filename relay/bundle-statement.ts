/**
 * The statement a bundle signs (docs/FORMAT.md 4), built from the plan's identity, its volumes and the artifacts.
 * `writeBundle` builds it from the written volumes; the plan builds the same statement with the volumes' digests not
 * yet known (64 hex characters all the same) and the chunk lists the writer will sign (4.11) as 64 hex characters a
 * chunk, so it knows the statement's exact length, the one thing the bundle files grow with (docs/FORMAT.md 12).
 */
import { chunkCount } from '../sneakernet/chunk-list.js';
import { LIMITS } from '../sneakernet/limits.js';
import {
  encodeStatement,
  FORMAT_VERSION,
  PREDICATE_TYPE,
  STATEMENT_TYPE,
  subjectName,
  type Artifact,
  type Predicate,
  type Statement,
} from '../sneakernet/statement.js';
import type { PlannedVolume } from '../sneakernet/volume-plan.js';
import { listedChunkSizes } from './chunk-listing.js';

/** What the statement says of the bundle itself. */
export type StatementIdentity = Pick<
  Predicate,
  'bundleId' | 'station' | 'sequence' | 'previous' | 'site' | 'created' | 'expires'
>;

export function statementOf(
  id: StatementIdentity,
  volumes: readonly PlannedVolume[],
  written: ReadonlyArray<{ size: number; sha256: string }>,
  artifacts: Artifact[],
): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: artifacts.map((a) => ({ name: subjectName(a), digest: { sha256: a.sha256, sha512: a.sha512 } })),
    predicateType: PREDICATE_TYPE,
    predicate: {
      formatVersion: FORMAT_VERSION,
      bundleId: id.bundleId,
      station: id.station,
      sequence: id.sequence,
      previous: id.previous,
      site: id.site,
      created: id.created,
      expires: id.expires,
      volumes: volumes.map((v, i) => ({
        name: v.name,
        size: written[i]?.size ?? 0,
        sha256: written[i]?.sha256 ?? '',
        entries: v.entries.map((e) => ({ path: e.path, artifact: e.artifact, offset: e.offset, size: e.size })),
      })),
      artifacts,
    },
  };
}

/**
 * The bytes of the statement a bundle signs (4.11): with the chunk lists (`listed`: the artifacts with theirs), unless
 * there are none or they would take it over its bound of LIMITS.statementBytes; then without. The one rule both the
 * writer (the real lists) and the plan (lists of the same length) apply.
 */
export function encodeSigned(
  id: StatementIdentity,
  volumes: readonly PlannedVolume[],
  written: ReadonlyArray<{ size: number; sha256: string }>,
  artifacts: Artifact[],
  listed: Artifact[] | null,
): Buffer {
  const plain = () => encodeStatement(statementOf(id, volumes, written, artifacts));
  if (!listed) return plain();
  const bytes = encodeStatement(statementOf(id, volumes, written, listed));
  return bytes.length <= LIMITS.statementBytes ? bytes : plain();
}

/**
 * The byte length of the statement `writeBundle` will sign for these volumes (relay/write-bundle.ts `newStatement`):
 * with the chunk lists the writer computes unless `chunks` is false, and without them when they would take it over
 * its 4 MiB bound. Exact, not estimated: every value it does not know yet has a fixed length (a volume's size is its
 * planned size, the tar being canonical; its sha256 is 64 hex characters; a chunk list is 64 per chunk).
 */
export function plannedStatementBytes(
  id: StatementIdentity,
  artifacts: Artifact[],
  volumes: readonly PlannedVolume[],
  chunks: boolean,
): number {
  const written = volumes.map((v) => ({ size: v.size, sha256: '0'.repeat(64) }));
  const sizes = chunks ? listedChunkSizes(artifacts, volumes) : new Map<number, number>();
  const listed =
    sizes.size === 0
      ? null
      : artifacts.map((a, k): Artifact => {
          const size = sizes.get(k);
          return size === undefined ? a : { ...a, chunks: { size, sha256: '0'.repeat(64 * chunkCount(a.size, size)) } };
        });
  return encodeSigned(id, volumes, written, artifacts, listed).length;
}
