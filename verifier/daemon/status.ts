/**
 * What the operator sees: the daemon keeps `<home>/daemon/status.json` up to date (written to a temporary file and
 * renamed, so a reader never sees half of it); `ecluse status` and `GET /status.json` read it.
 */
import fs from 'node:fs';
import path from 'node:path';
import express from 'express';
import Database from 'better-sqlite3';
import { dbPath } from '../db.js';
import { lastDecision } from '../audit/decisions.js';
import { imageLabel } from '../image-catalog.js';
import type { UsbIdentity } from './identity.js';

export type StickState = 'mounting' | 'mounted' | 'not-mounted' | 'not-allowed';

/** A USB stick the daemon saw arrive (the `usb` package), before and after it is mounted. */
export interface StickStatus {
  /** The sysfs name, `1-2.3`. */
  device: string;
  usb: UsbIdentity;
  state: StickState;
  since: string;
  message: string;
}

export type DaemonState = 'idle' | 'reading' | 'importing' | 'waiting' | 'stopped';

export interface MediumStatus {
  mountPoint: string;
  device: string;
  state: 'queued' | 'reading' | 'done' | 'refused' | 'removed';
  message: string;
}

export interface WaitingBundle {
  bundle: string;
  station: string;
  sequence: number;
  volumes: number;
  have: string[];
  missing: string[];
  /** `insert volume 2 of 3 of bundle outside-1 #4 (6f1c…)`. */
  message: string;
}

export interface Progress {
  bundle: string;
  station: string;
  sequence: number;
  phase: 'copying' | 'importing';
  mountPoint: string;
  volume: string | null;
  bytesDone: number;
  bytesTotal: number;
  percent: number;
}

export interface LastOutcome {
  outcome: 'accepted' | 'refused' | 'interrupted';
  at: string;
  bundle: string | null;
  code: string | null;
  message: string;
  media: string | null;
}

export interface DaemonStatus {
  state: DaemonState;
  /** One line for a screen: what is happening, or what the operator should do. */
  message: string;
  updatedAt: string;
  pid: number;
  mediaRoots: string[];
  progress: Progress | null;
  waiting: WaitingBundle[];
  media: MediumStatus[];
  last: LastOutcome | null;
  /** USB sticks plugged in now (hotplug), mounted or not; absent from older daemons. */
  sticks?: StickStatus[];
}

export function daemonDir(home: string): string {
  return path.join(home, 'daemon');
}

export function statusFile(home: string): string {
  return path.join(daemonDir(home), 'status.json');
}

export function writeStatus(home: string, s: DaemonStatus): void {
  const file = statusFile(home);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  fs.writeFileSync(tmp, `${JSON.stringify(s, null, 2)}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The last import decision recorded in the station's database, whoever made it (the daemon, or `ecluse import` at
 * the command line): the daemon's own memory only knows what it did itself. Null without a database or a decision.
 */
export function lastImportFromDb(home: string): LastOutcome | null {
  const file = dbPath(home);
  if (!fs.existsSync(file)) return null;
  let db: Database.Database | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    db.pragma('busy_timeout = 2000');
    const row = lastDecision(db);
    if (!row) return null;
    const outcome = row.kind.slice('import.'.length) as LastOutcome['outcome'];
    let message = row.message;
    if (outcome === 'accepted') {
      const d = JSON.parse(row.details) as { sequence?: number; images?: string[] };
      const ids = Array.isArray(d.images) ? d.images : [];
      const open = db;
      const names = ids.flatMap((id) => imageLabel(open, id) ?? []);
      message = `bundle ${row.station ?? '?'} #${d.sequence ?? '?'} imported${names.length ? `: ${names.join(', ')}` : ''}`;
    }
    return { outcome, at: row.at, bundle: row.bundle_id, code: row.code, message, media: row.media };
  } catch {
    return null; // a damaged or locked database: the status still shows what the daemon knows
  } finally {
    db?.close();
  }
}

/** The more recent of two outcomes (the first when they are as recent). */
export function newerOutcome(a: LastOutcome | null, b: LastOutcome | null): LastOutcome | null {
  if (!a || !b) return a ?? b;
  return Date.parse(b.at) > Date.parse(a.at) ? b : a;
}

/** The daemon's status, or `stopped` when no daemon is running for this home. */
export function readStatus(home: string): DaemonStatus {
  let s: DaemonStatus | null = null;
  try {
    s = JSON.parse(fs.readFileSync(statusFile(home), 'utf8')) as DaemonStatus;
  } catch {
    s = null;
  }
  const fromDb = lastImportFromDb(home);
  if (s && s.state !== 'stopped' && alive(s.pid)) {
    const last = newerOutcome(s.last, fromDb);
    // An idle daemon's line names its own last import: a newer one made at the command line replaces it.
    const message = s.state === 'idle' && last && last !== s.last ? `idle; last: ${last.message}` : s.message;
    return { ...s, message, last };
  }
  return {
    state: 'stopped',
    message: 'the import daemon is not running',
    updatedAt: s?.updatedAt ?? new Date().toISOString(),
    pid: s?.pid ?? 0,
    mediaRoots: s?.mediaRoots ?? [],
    progress: null,
    waiting: s?.waiting ?? [],
    media: [],
    last: newerOutcome(s?.last ?? null, fromDb),
  };
}

/** `GET /status.json` for the web view. The home is where the image store lives (`<home>/store/images`). */
export function statusRoutes(imagesDir: string): express.Router {
  const home = path.resolve(imagesDir, '..', '..');
  const router = express.Router();
  router.get('/status.json', (_req, res) => {
    res.set('Cache-Control', 'no-store');
    res.json(readStatus(home));
  });
  return router;
}
