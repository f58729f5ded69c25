/**
 * The import station's media daemon. It polls the mount table for media mounted under the media roots (udev and
 * systemd-mount mount them: systemd/), re-checks each mount's filesystem and options, records the device, finds the
 * bundles and imports them in sequence order, one medium after the other. A bundle over several media is assembled
 * volume by volume in a private folder until its last volume arrives. A medium unmounted while it is being read
 * aborts what it was feeding (nothing is promoted). Every step is audited, logged (log.ts: the journal under
 * systemd), and reflected in the status file the operator's screen reads.
 *
 * This module only puts the parts together and runs them: mount-watch.ts (the mount table), import-queue.ts (whose
 * turn it is), medium-reader.ts (admitting a medium, finding its bundles), bundle-import.ts (verifying, assembling
 * and importing one bundle), status-publisher.ts (the status file, STATUS= and the watchdog), update-results.ts (the
 * self-update installer's outcomes into the audit log, at start and whenever its results folder changes).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { asEcluseError, EcluseError } from '../../sneakernet/errors.js';
import type { Site } from '../site.js';
import { listAssemblies, waitingMessage } from './assembly.js';
import { BundleImporter } from './bundle-import.js';
import type { IdentityRoots } from './identity.js';
import { ImportQueue } from './import-queue.js';
import { Inbox } from './inbox.js';
import type { DaemonLog } from './log.js';
import { DEFAULT_MEDIA_POLICY, type MediaPolicy } from './media-policy.js';
import type { Medium } from './medium.js';
import { MediumReader } from './medium-reader.js';
import { MountWatcher } from './mount-watch.js';
import type { Notifier } from './notify.js';
import { StatusPublisher } from './status-publisher.js';
import { UsbSticks, type UsbDeviceSource } from './usb-sticks.js';
import { UpdateResults } from '../update-results.js';
import { placePendingHandOvers } from '../self-update/placing.js';

export interface DaemonOptions {
  site: Site;
  mediaRoots: string[];
  pollMs: number;
  log: DaemonLog;
  notifier: Notifier;
  /** The watchdog interval systemd expects, or null. */
  watchdogMs: number | null;
  readRate?: number;
  /** Where écluse's own package is handed over (docs/FORMAT.md 4.10); default /var/lib/ecluse-update/incoming. */
  updateSpool?: string;
  mountinfo?: string;
  identityRoots?: IdentityRoots;
  /** Which mounts are accepted beyond the kernel's filesystems (FUSE drivers); default: none. */
  mediaPolicy?: MediaPolicy;
  /** The data-diode inbox folder (inbox.ts), or none. */
  inbox?: string;
  /** USB hotplug (usb-sticks.ts), or none. */
  usb?: { source: UsbDeviceSource; mountTimeoutMs: number; allowedSerials: readonly string[] | null };
  /** The self-update installer's results folder (update-results.ts), or none. */
  updateResults?: string;
}

export class ImportDaemon {
  private readonly queue = new ImportQueue();
  private readonly watcher: MountWatcher;
  private readonly status: StatusPublisher;
  private readonly reader: MediumReader;
  private readonly inbox: Inbox | null;
  private readonly sticks: UsbSticks | null;
  private readonly updates: UpdateResults | null;
  private stopped = false;
  private pollTimer: NodeJS.Timeout | null = null;
  private worker: Promise<void> | null = null;

  constructor(private readonly o: DaemonOptions) {
    this.watcher = new MountWatcher({
      mediaRoots: o.mediaRoots,
      ...(o.mountinfo ? { mountinfo: o.mountinfo } : {}),
      ...(o.identityRoots?.sys ? { sysRoot: o.identityRoots.sys } : {}),
      log: o.log,
      onMounted: (m) => this.queue.add(m),
      onRemoved: (m) => this.queue.remove(m),
    });
    this.status = new StatusPublisher({
      home: o.site.home.root,
      mediaRoots: o.mediaRoots,
      log: o.log,
      notifier: o.notifier,
      watchdogMs: o.watchdogMs,
      media: () => this.media(),
      busy: () => this.queue.busy,
      sticks: () => this.sticks?.list() ?? [],
    });
    const bundles = new BundleImporter({
      site: o.site,
      log: o.log,
      status: this.status,
      ...(o.readRate ? { readRate: o.readRate } : {}),
      ...(o.updateSpool ? { updateSpool: o.updateSpool } : {}),
      onImported: () => this.queue.requeueDeferred(this.media()),
    });
    this.reader = new MediumReader({
      site: o.site,
      log: o.log,
      status: this.status,
      bundles,
      mediaPolicy: o.mediaPolicy ?? DEFAULT_MEDIA_POLICY,
      ...(o.identityRoots ? { identityRoots: o.identityRoots } : {}),
      stopped: () => this.stopped,
    });
    this.inbox = o.inbox
      ? new Inbox({ dir: o.inbox, site: o.site, log: o.log, onReceived: (m) => this.queue.add(m) })
      : null;
    this.sticks = o.usb
      ? new UsbSticks({
          ...o.usb,
          db: o.site.db,
          log: o.log,
          roots: o.identityRoots ?? { sys: '/sys' },
          onChange: () => this.status.write(true),
        })
      : null;
    this.updates = o.updateResults
      ? new UpdateResults({
          dir: o.updateResults,
          db: o.site.db,
          onAudited: (e) =>
            o.log({
              event: 'update.audited',
              level: e.kind === 'update.installed' ? 'info' : 'warning',
              code: e.code,
              message: `${e.kind} from the self-update installer audited (event ${e.seq}): ${e.message}`,
              result: e.name,
            }),
          onUnreadableFolder: (why) => o.log({ event: 'update.results-unreadable', level: 'warning', message: why }),
        })
      : null;
  }

  /** Audits the self-update installer's new results; a failure is logged and retried on the next poll. */
  private auditUpdates(): void {
    try {
      this.updates?.poll();
    } catch (e) {
      const err = asEcluseError(e);
      this.o.log({ event: 'daemon.error', level: 'error', code: err.code, message: err.message });
    }
  }

  /**
   * Hand-overs of écluse's own package recorded by an accepted bundle but not placed in the spool (the placing after
   * the commit failed, or the process died): placed now, each outcome audited (placing.ts) and logged.
   */
  private placePending(): void {
    for (const r of placePendingHandOvers(this.o.site.db)) {
      this.o.log({
        event: r.kind ?? 'update.hand-over-failed',
        level: r.outcome === 'placed' ? 'info' : 'warning',
        bundle: r.bundleId,
        artifact: `ecluse@${r.version}`,
        ...(r.code ? { code: r.code } : {}),
        message: r.code ? `${r.code}: ${r.message}` : r.message,
      });
    }
  }

  /** The media mounted now and the inbox deliveries being handled. */
  private *media(): Iterable<Medium> {
    yield* this.watcher.media.values();
    if (this.inbox) yield* this.inbox.items.values();
  }

  async start(): Promise<void> {
    for (const a of listAssemblies(this.o.site.home.root)) {
      this.o.log({
        event: 'bundle.waiting',
        bundle: a.meta.bundle,
        message: `${waitingMessage(a)} (kept from before)`,
      });
    }
    this.sticks?.start();
    this.auditUpdates();
    this.placePending();
    await this.poll();
    await this.inbox?.start();
    this.pollTimer = setInterval(() => void this.poll(), this.o.pollMs);
    this.worker = this.queue.run(
      async (m) => {
        try {
          await this.reader.read(m);
        } finally {
          if (!this.stopped || m.outcomes.size > 0) this.inbox?.finish(m);
        }
      },
      (e) => {
        const err = asEcluseError(e);
        this.o.log({ event: 'daemon.error', level: 'error', code: err.code, message: err.message });
      },
      () => {
        this.status.progress = null;
        this.status.write(true);
      },
    );
    this.o.notifier.notify({ READY: '1', STATUS: this.status.statusLine() });
    this.o.log({
      event: 'daemon.started',
      message: `watching ${this.o.mediaRoots.join(', ')} for media${this.o.inbox ? ` and the inbox ${this.o.inbox}` : ''}`,
      mediaRoots: this.o.mediaRoots,
      inbox: this.o.inbox ?? null,
    });
    this.status.write(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.o.notifier.notify({ STOPPING: '1' });
    if (this.pollTimer) clearInterval(this.pollTimer);
    this.sticks?.stop();
    await this.inbox?.stop();
    for (const m of this.inbox?.items.values() ?? []) {
      m.abort.abort(new EcluseError('E_MEDIA_REMOVED', 'the daemon is stopping; nothing was promoted'));
    }
    this.watcher.abortAll(new EcluseError('E_MEDIA_REMOVED', 'the daemon is stopping; nothing was promoted'));
    this.queue.stop();
    await this.worker;
    this.status.write(true, 'stopped');
    this.o.log({ event: 'daemon.stopped', message: 'stopped' });
  }

  private async poll(): Promise<void> {
    if (this.stopped) return;
    this.auditUpdates();
    if (!(await this.watcher.poll())) return;
    this.sticks?.tick(this.watcher.media.values());
    this.status.watchdog();
    this.status.write(false);
  }
}

/**
 * Starts the daemon and stops it on SIGTERM or SIGINT. The handlers are installed before the start, so a signal that
 * arrives while it starts (a supervisor that stops it as soon as `daemon.started` is read) ends in a clean stop once
 * the start is through, never in the default death by signal.
 */
export async function runDaemonUntilSignal(d: ImportDaemon): Promise<void> {
  const signalled = new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await d.start();
  await signalled;
  await Promise.race([d.stop(), sleep(10_000)]);
}
