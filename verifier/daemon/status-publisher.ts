/**
 * Publishing what the daemon is doing: the status file the operator's screen reads (status.ts), the STATUS= line
 * and the watchdog pings systemd expects, from the progress of the bundle at hand and the last outcome.
 */
import path from 'node:path';
import type { EcluseError } from '../../sneakernet/errors.js';
import { listAssemblies, waitingMessage } from './assembly.js';
import type { DaemonLog } from './log.js';
import type { Medium } from './medium.js';
import type { Notifier } from './notify.js';
import type { StickStatus } from './usb-sticks.js';
import {
  lastImportFromDb,
  newerOutcome,
  writeStatus,
  type DaemonStatus,
  type LastOutcome,
  type Progress,
  type WaitingBundle,
} from './status.js';

export interface StatusPublisherOptions {
  home: string;
  mediaRoots: string[];
  log: DaemonLog;
  notifier: Notifier;
  /** The watchdog interval systemd expects, or null. */
  watchdogMs: number | null;
  /** The media mounted now. */
  media: () => Iterable<Medium>;
  /** Whether a medium is being handled. */
  busy: () => boolean;
  /** USB sticks plugged in now (usb-sticks.ts). */
  sticks?: () => StickStatus[];
}

export class StatusPublisher {
  /** The bundle being copied or imported, or null. */
  progress: Progress | null = null;
  private last: LastOutcome | null = null;
  /** The last decision in the database (imports at the command line too), refreshed on each forced write. */
  private lastInDb: LastOutcome | null = null;
  private lastWatchdog = 0;
  private lastWrite = 0;

  constructor(private readonly o: StatusPublisherOptions) {
    this.lastInDb = lastImportFromDb(o.home);
  }

  setLast(
    outcome: LastOutcome['outcome'],
    bundle: string | null,
    err: EcluseError | null,
    m: Medium,
    message?: string,
  ): void {
    this.last = {
      outcome,
      at: new Date().toISOString(),
      bundle,
      code: err?.code ?? null,
      message: message ?? (err ? err.line() : ''),
      media: m.mount.mountPoint,
    };
  }

  /** `n` more bytes done of the bundle at hand (0: only republish). */
  advance(n: number): void {
    if (!this.progress) return;
    this.progress.bytesDone += n;
    this.progress.percent = Math.floor((this.progress.bytesDone / Math.max(1, this.progress.bytesTotal)) * 100);
    this.write(false);
  }

  /** Pings systemd's watchdog, at most three times an interval. */
  watchdog(): void {
    const now = Date.now();
    if (this.o.watchdogMs && now - this.lastWatchdog >= this.o.watchdogMs / 3) {
      this.lastWatchdog = now;
      this.o.notifier.notify({ WATCHDOG: '1' });
    }
  }

  private waiting(): WaitingBundle[] {
    return listAssemblies(this.o.home).map((a) => ({
      bundle: a.meta.bundle,
      station: a.meta.station,
      sequence: a.meta.sequence,
      volumes: a.meta.volumes.length,
      have: a.have,
      missing: a.missing,
      message: waitingMessage(a),
    }));
  }

  statusLine(waiting: WaitingBundle[] = this.waiting()): string {
    const p = this.progress;
    if (p) {
      return p.phase === 'copying'
        ? `copying ${p.volume ?? ''} of bundle ${p.station} #${p.sequence}: ${p.percent}%`
        : `importing bundle ${p.station} #${p.sequence}: ${p.percent}%`;
    }
    const stick = this.o.sticks?.().find((s) => s.state !== 'mounted');
    if (stick) return stick.message;
    if (waiting[0]) return waiting[0].message;
    const last = newerOutcome(this.last, this.lastInDb);
    if (last) return `idle; last: ${last.message}`;
    return 'idle: insert a medium';
  }

  /** Writes the status file (at most four times a second unless `force`); forced writes also update STATUS=. */
  write(force: boolean, state?: 'stopped'): void {
    const now = Date.now();
    if (!force && now - this.lastWrite < 250) return;
    this.lastWrite = now;
    if (force) this.lastInDb = lastImportFromDb(this.o.home);
    const waiting = this.waiting();
    const s: DaemonStatus = {
      state:
        state ??
        (this.progress
          ? this.progress.phase === 'copying'
            ? 'reading'
            : 'importing'
          : waiting.length > 0
            ? 'waiting'
            : this.o.busy()
              ? 'reading'
              : 'idle'),
      message: state === 'stopped' ? 'the import daemon is not running' : this.statusLine(waiting),
      updatedAt: new Date(now).toISOString(),
      pid: process.pid,
      mediaRoots: this.o.mediaRoots.map((r) => path.resolve(r)),
      progress: this.progress ? { ...this.progress } : null,
      waiting,
      media: [...this.o.media()].map((m) => ({ ...m.status })),
      last: newerOutcome(this.last, this.lastInDb),
      sticks: this.o.sticks?.() ?? [],
    };
    try {
      writeStatus(this.o.home, s);
    } catch (e) {
      this.o.log({ event: 'daemon.error', level: 'error', message: `cannot write the status file: ${String(e)}` });
    }
    if (force) this.o.notifier.notify({ STATUS: s.message });
  }
}
