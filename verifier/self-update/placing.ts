/**
 * Placing a recorded hand-over (docs/FORMAT.md 4.10), after the commit that accepted its bundle: the dot-files that
 * hand-over.ts prepared are renamed into the names the installer's path unit watches, and the `handed_over_packages`
 * row goes from `pending` to `placed`, in one transaction under the write lock (so that an import and the daemon,
 * two processes, never place the same package twice). Never throws: the bundle is accepted whatever comes of it.
 *
 *   - placed: nothing audited when it follows its commit (`update.handed-over` said it), `update.hand-over-placed`
 *     when it is a retry (`placePendingHandOvers`, at the daemon's start and at each import);
 *   - a rename fails (the spool gone, not writable): `update.hand-over-failed` (E_UPDATE) naming the spool and what to
 *     do; the dot-files are kept and the row stays `pending`, for the next retry;
 *   - the dot-files are gone (and the installer neither has the package in the spool nor reported an outcome for it):
 *     `update.hand-over-lost` (E_UPDATE), the row becomes `lost`: the receipt no longer lists it, so the export
 *     station sends the package again, in a new bundle.
 *
 * A crash after the renames and before the row is marked leaves it `pending` with the package placed: the retry finds
 * `<sha256>.deb` in the spool (or the installer's outcome for it) and marks it placed. Should the installer have taken
 * the package and not yet reported (it reports once it ran), the retry says it is lost; a package sent again is then
 * refused as not newer than the one installed.
 */
import { z } from 'zod';
import { asEcluseError, type ErrorCode } from '../../sneakernet/errors.js';
import { storedRows } from '../../sneakernet/stored-rows.js';
import { appendAudit } from '../audit.js';
import type { Db } from '../db.js';
import { placeFiles, spoolNames, type Placing } from './hand-over.js';
import { handOverRow, pendingHandOvers, setHandOverState, type HandedOverRow } from './packages.js';
import path from 'node:path';

/** The audit event kinds of placing (beside `update.handed-over`, written in the commit). */
export const HAND_OVER_PLACED = 'update.hand-over-placed';
export const HAND_OVER_FAILED = 'update.hand-over-failed';
export const HAND_OVER_LOST = 'update.hand-over-lost';

export interface PlaceOutcome {
  sha256: string;
  version: string;
  bundleId: string;
  /** `placed` (now, or found placed already), `failed` (to be retried), `lost` (to be sent again). */
  outcome: 'placed' | 'failed' | 'lost';
  code: ErrorCode | null;
  message: string;
  /** The audit event it became, or null (a placing right after its commit is not audited again). */
  kind: string | null;
}

const resultName = storedRows(
  'update_results',
  z.object({ name: z.string() }),
  'restore the station home from its last backup',
);

/** Whether the installer reported an outcome for the package `sha256` (its result files are named after it). */
function installerReported(db: Db, sha256: string): boolean {
  return resultName.get(db, 'SELECT name FROM update_results WHERE name LIKE ?', `%-${sha256}-%`) !== undefined;
}

function where(row: HandedOverRow): string {
  return path.dirname(row.spool);
}

/**
 * Places the pending hand-over of `sha256`, if it is still pending. `retry`: called by placePendingHandOvers (a
 * success is audited too). Returns null when there was nothing to do (placed by another process, or no such row).
 */
export function placeHandedOver(db: Db, sha256: string, o: { retry: boolean; media?: string }): PlaceOutcome | null {
  let row: HandedOverRow | undefined;
  try {
    return db
      .transaction((): PlaceOutcome | null => {
        row = handOverRow(db, sha256);
        if (!row || row.state !== 'pending') return null;
        const names = spoolNames(where(row), sha256);
        const placing: Placing = placeFiles(names, installerReported(db, sha256));
        const base = { sha256, version: row.version, bundleId: row.bundle_id };
        if (placing.kind === 'lost') {
          setHandOverState(db, sha256, 'lost');
          const message = `ecluse ${row.version}, accepted with bundle ${row.bundle_id}, cannot be handed over to the installer: ${placing.why} (removed from ${names.spool} before it was placed); the package must be re-sent: the receipt no longer lists it, so the export station sends it again in its next bundle`;
          audit(db, row, HAND_OVER_LOST, 'fail', 'E_UPDATE', message, o.media, { reason: placing.why });
          return { ...base, outcome: 'lost', code: 'E_UPDATE', message, kind: HAND_OVER_LOST };
        }
        setHandOverState(db, sha256, 'placed');
        const message =
          placing.kind === 'placed'
            ? `ecluse ${row.version} handed over to the installer as ${names.deb}${o.retry ? ` (placed late: its placing after the commit of bundle ${row.bundle_id} had not been done)` : ''}`
            : `ecluse ${row.version} found handed over to the installer already (${names.deb} in the spool, or the installer reported on it)`;
        if (o.retry) audit(db, row, HAND_OVER_PLACED, 'info', null, message, o.media, { deb: names.deb });
        return { ...base, outcome: 'placed', code: null, message, kind: o.retry ? HAND_OVER_PLACED : null };
      })
      .immediate();
  } catch (e) {
    const err = asEcluseError(e);
    const r = row ?? undefined;
    if (!r) {
      return {
        sha256,
        version: '?',
        bundleId: '?',
        outcome: 'failed',
        code: err.code,
        message: `the hand-over of package ${sha256} could not be read: ${err.message}; it is tried again at the daemon's next start and at the next import`,
        kind: null,
      };
    }
    const spool = where(r);
    const message = `ecluse ${r.version} was accepted with bundle ${r.bundle_id} but could not be placed for the installer: ${err.message}; its files are kept in ${spool} as .${sha256}.deb and .${sha256}.bundle/. Check that ${spool} exists and that the user ecluse may write there (systemd-tmpfiles --create), then restart ecluse-daemon or import any bundle: the placing is tried again then`;
    let kind: string | null = HAND_OVER_FAILED;
    try {
      audit(db, r, HAND_OVER_FAILED, 'fail', 'E_UPDATE', message, o.media, { spool, cause: err.message });
    } catch {
      // The log may be what failed (disk full): the caller says it; the row stays pending, the retry audits.
      kind = null;
    }
    return { sha256, version: r.version, bundleId: r.bundle_id, outcome: 'failed', code: 'E_UPDATE', message, kind };
  }
}

/** Every pending hand-over placed (or its failure audited): at the daemon's start and at each import. Never throws. */
export function placePendingHandOvers(db: Db, o: { media?: string } = {}): PlaceOutcome[] {
  let pending: HandedOverRow[];
  try {
    pending = pendingHandOvers(db);
  } catch (e) {
    const err = asEcluseError(e);
    return [
      {
        sha256: '?',
        version: '?',
        bundleId: '?',
        outcome: 'failed',
        code: err.code,
        message: `the pending hand-overs could not be read: ${err.message}`,
        kind: null,
      },
    ];
  }
  return pending.flatMap((r) => placeHandedOver(db, r.sha256, { retry: true, ...o }) ?? []);
}

function audit(
  db: Db,
  row: HandedOverRow,
  kind: string,
  outcome: 'info' | 'fail',
  code: ErrorCode | null,
  message: string,
  media: string | undefined,
  details: Record<string, unknown>,
): void {
  appendAudit(db, {
    kind,
    outcome,
    code,
    message,
    bundleId: row.bundle_id,
    station: row.station,
    artifact: `ecluse@${row.version}`,
    media: media ?? null,
    details: { version: row.version, sha256: row.sha256, ...details },
  });
}
