/**
 * Self-update outcomes into the audit chain. The root installer (`systemd/ecluse-update`, docs/FORMAT.md 4.10) writes
 * one small JSON file per outcome into `/var/lib/ecluse-update/results/` (root-owned, group ecluse may read): the
 * package was installed, failed to come up, was rolled back (or could not be), or was refused by the root's own
 * check. The daemon reads that folder when it starts and whenever it changes, and appends each file not yet audited
 * as one audit event (`update.installed`, `update.failed`, `update.rolled-back`, `update.rollback-failed`,
 * `update.refused`), recording its name in `update_results` in the same transaction: exactly once, across restarts.
 *
 * The files come from root, but they are parsed as strictly as anything else: a name or a content that is not a
 * result (over 8 KiB, not a regular file, not JSON, a member missing or of the wrong shape, an unknown code, an event
 * that is not the one its name says) is audited as `update.result-unreadable` (`E_UPDATE`), and nothing in it is
 * trusted (only its name, quoted, appears in the event).
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ERROR_CODES, type ErrorCode } from '../sneakernet/errors.js';
import { storedRows } from '../sneakernet/stored-rows.js';
import { appendAudit, type AuditOutcome } from './audit.js';
import { lastUpdateOutcome } from './audit/decisions.js';
import type { Db } from './db.js';

/** Where the installer writes its results (the daemon's `--update-results`). */
export const DEFAULT_UPDATE_RESULTS = '/var/lib/ecluse-update/results';
/** A result is a few hundred bytes; anything over this is not one. */
export const MAX_RESULT_BYTES = 8192;
/** At most this many files are looked at per scan (the installer keeps the newest 100). */
const MAX_FILES_PER_SCAN = 1000;

export const UPDATE_EVENTS = [
  'update.installed',
  'update.failed',
  'update.rolled-back',
  'update.rollback-failed',
  'update.refused',
] as const;
export type UpdateEvent = (typeof UPDATE_EVENTS)[number];
export const UNREADABLE_EVENT = 'update.result-unreadable';

/** The audit outcome of each installer event. */
const OUTCOME: Record<UpdateEvent, AuditOutcome> = {
  'update.installed': 'accepted',
  'update.failed': 'fail',
  'update.rolled-back': 'info',
  'update.rollback-failed': 'fail',
  'update.refused': 'refused',
};

/** `<UTC time>-<sha256>-<event>.json`, e.g. `20261202T121314.123456789Z-<64 hex>-update.installed.json`. */
const RESULT_NAME = /^(\d{8}T\d{6}(?:\.\d{1,9})?Z)-([0-9a-f]{64})-(update\.[a-z-]{1,32})\.json$/;
const DEBIAN_VERSION = /^[0-9][A-Za-z0-9.+~:-]{0,127}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const resultFile = z.strictObject({
  event: z.enum(UPDATE_EVENTS),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  version: z.string().regex(DEBIAN_VERSION).nullable(),
  previous: z.string().regex(DEBIAN_VERSION).nullable(),
  bundle: z.string().regex(UUID).nullable(),
  code: z
    .string()
    .refine((c) => Object.hasOwn(ERROR_CODES, c), 'not a registered error code')
    .nullable(),
  message: z.string().min(1).max(2000),
  time: z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?Z$/),
});
export type UpdateResult = z.infer<typeof resultFile>;

const auditedRow = z.strictObject({ name: z.string() });
const auditedRows = storedRows('update_results', auditedRow, 'restore the home from its last backup');

/** Why `text`, read from the file named `name`, is not a result; or the result. */
export function parseResult(name: string, text: string): { result: UpdateResult } | { why: string } {
  const m = RESULT_NAME.exec(name);
  if (!m) return { why: 'its name is not <time>-<sha256>-<event>.json' };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { why: 'it is not JSON' };
  }
  const r = resultFile.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    return { why: `${issue?.path.join('.') || 'the object'}: ${issue?.message ?? 'not a result'}` };
  }
  const x = r.data;
  if (x.event !== m[3]) return { why: `it says ${x.event}, its name says ${m[3]}` };
  if (x.sha256 !== m[2]) return { why: 'its sha256 is not the one its name says' };
  if ((x.event === 'update.installed') !== (x.code === null)) {
    return { why: x.code === null ? `${x.event} without a code` : `${x.event} with a code` };
  }
  return { result: x };
}

/** The file's text, read without following a link, bounded; or why it cannot be a result. */
function readBounded(file: string): { text: string } | { why: string } {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    return { why: `it cannot be opened (${(e as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { why: 'it is not a regular file' };
    if (st.size > MAX_RESULT_BYTES) return { why: `it is over ${MAX_RESULT_BYTES} bytes` };
    const buf = Buffer.alloc(MAX_RESULT_BYTES + 1);
    let n = 0;
    for (;;) {
      const got = fs.readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n > MAX_RESULT_BYTES) return { why: `it is over ${MAX_RESULT_BYTES} bytes` };
    }
    return { text: buf.subarray(0, n).toString('utf8') };
  } finally {
    fs.closeSync(fd);
  }
}

/** A name as it may appear in a message: quoted, control characters escaped, bounded. */
function quoted(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}...` : name);
}

function auditResult(db: Db, name: string, r: UpdateResult): number {
  return appendAudit(db, {
    kind: r.event,
    outcome: OUTCOME[r.event],
    code: r.code,
    message: r.message,
    bundleId: r.bundle,
    artifact: r.version ? `ecluse@${r.version}` : null,
    details: {
      result: name,
      sha256: r.sha256,
      version: r.version,
      previous: r.previous,
      time: r.time,
    },
  });
}

function auditUnreadable(db: Db, dir: string, name: string, why: string): number {
  const code: ErrorCode = 'E_UPDATE';
  return appendAudit(db, {
    kind: UNREADABLE_EVENT,
    outcome: 'fail',
    code,
    message:
      `the self-update installer's result ${quoted(name)} in ${dir} is not readable as one (${why}); nothing in it ` +
      'was trusted: see what the installer did with journalctl -t ecluse-update',
    details: { result: name, why },
  });
}

export interface UpdateResultsOptions {
  /** The installer's results folder. */
  dir: string;
  db: Db;
  /** Told of each audited file and of a folder that cannot be read (once until it can again). */
  onAudited?(e: { name: string; kind: string; seq: number; code: string | null; message: string }): void;
  onUnreadableFolder?(why: string): void;
}

/**
 * The results folder as the daemon watches it: `scan()` audits every result not yet audited, oldest name first, and
 * returns how many it appended; `poll()` does the same only when the folder changed since the last look (its mtime
 * and size: a rename into it changes both), so it may be called on every tick of the daemon's poll.
 */
export class UpdateResults {
  private seen: string | null = null;
  private folderError: string | null = null;

  constructor(private readonly o: UpdateResultsOptions) {}

  poll(): number {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.o.dir);
    } catch (e) {
      return this.unreadable(e);
    }
    const stamp = `${st.ino}:${st.mtimeMs}:${st.size}`;
    if (stamp === this.seen) return 0;
    const n = this.scan();
    if (this.folderError === null) this.seen = stamp;
    return n;
  }

  scan(): number {
    let names: string[];
    try {
      names = this.list();
    } catch (e) {
      return this.unreadable(e);
    }
    this.folderError = null;
    let n = 0;
    for (const name of names) {
      if (this.audited(name)) continue;
      const read = readBounded(path.join(this.o.dir, name));
      const parsed = 'text' in read ? parseResult(name, read.text) : read;
      const db = this.o.db;
      const tx = db.transaction(() => {
        // Checked again under the write lock: another connection may have audited it meanwhile.
        if (this.audited(name)) return null;
        const seq =
          'result' in parsed ? auditResult(db, name, parsed.result) : auditUnreadable(db, this.o.dir, name, parsed.why);
        db.prepare('INSERT INTO update_results (name, seq, at) VALUES (?, ?, ?)').run(
          name,
          seq,
          new Date().toISOString(),
        );
        return seq;
      });
      const seq = tx.immediate();
      if (seq === null) continue;
      n++;
      this.o.onAudited?.({
        name,
        seq,
        kind: 'result' in parsed ? parsed.result.event : UNREADABLE_EVENT,
        code: 'result' in parsed ? parsed.result.code : 'E_UPDATE',
        message: 'result' in parsed ? parsed.result.message : parsed.why,
      });
    }
    return n;
  }

  /** The folder's entries that are not dot-files (the installer writes `.<name>.tmp` then renames), sorted, bounded. */
  private list(): string[] {
    const names: string[] = [];
    const d = fs.opendirSync(this.o.dir);
    try {
      for (let e = d.readSync(); e !== null && names.length < MAX_FILES_PER_SCAN; e = d.readSync()) {
        if (!e.name.startsWith('.')) names.push(e.name);
      }
    } finally {
      d.closeSync();
    }
    return names.sort();
  }

  private audited(name: string): boolean {
    return auditedRows.get(this.o.db, 'SELECT name FROM update_results WHERE name = ?', name) !== undefined;
  }

  private unreadable(e: unknown): number {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    // No results folder: a station without the installer (a developer's machine, tests); nothing to audit.
    if (code === 'ENOENT') return 0;
    const why = `the self-update results folder ${this.o.dir} cannot be read (${code}); update outcomes are not audited until it can`;
    if (this.folderError !== why) {
      this.folderError = why;
      this.o.onUnreadableFolder?.(why);
    }
    return 0;
  }
}

/** The last self-update outcome as `ecluse status --json` shows it (`update`), or null when there was none. */
export interface LastUpdate {
  event: string;
  at: string;
  version: string | null;
  previous: string | null;
  bundle: string | null;
  code: string | null;
  message: string;
}

const auditedDetails = z.object({ version: z.string().nullable(), previous: z.string().nullable() }).partial();

export function lastUpdate(db: Db): LastUpdate | null {
  const e = lastUpdateOutcome(db);
  if (!e) return null;
  let details: z.infer<typeof auditedDetails> = {};
  try {
    const d = auditedDetails.safeParse(JSON.parse(e.details));
    if (d.success) details = d.data;
  } catch {
    // an unreadable result's details name the file only
  }
  return {
    event: e.kind,
    at: e.at,
    version: details.version ?? null,
    previous: details.previous ?? null,
    bundle: e.bundle_id,
    code: e.code,
    message: e.message,
  };
}
