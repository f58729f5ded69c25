/**
 * The import station's media daemon. It polls the mount table for media mounted under the media roots (udev and
 * systemd-mount mount them: systemd/), re-checks each mount's filesystem and options, records the device, finds the
 * bundles and imports them in sequence order, one medium after the other. A bundle over several media is assembled
 * volume by volume in a private folder until its last volume arrives. A medium unmounted while it is being read
 * aborts what it was feeding (nothing is promoted). Every step is audited, logged (log.ts: the journal), and reflected in
 * the status file the operator's screen reads.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { asEcluseError, EcluseError } from '../../sneakernet/errors.js';
import { findBundles } from '../../sneakernet/bundle-files.js';
import { inspectMedia } from '../../sneakernet/inspect.js';
import { appendAudit } from '../audit.js';
import { runImport, verifyBundleOnMedium, type BundleOnMedium } from '../import.js';
import type { Site } from '../site.js';
import { copyVolume, createAssembly, findAssembly, listAssemblies, removeAssembly, type Assembly } from './assembly.js';
import { describeIdentity, mediaIdentity, type IdentityRoots, type MediaIdentity } from './identity.js';
import {
  checkMediaMount,
  DEFAULT_MEDIA_POLICY,
  describeFilesystem,
  mountWarnings,
  type MediaFilesystem,
  type MediaPolicy,
} from './media-policy.js';
import { mediaMounts, mountKey, readMountTable, type MountEntry } from './mountinfo.js';
import { type DaemonLog } from './log.js';
import { type Notifier } from './notify.js';
import {
  writeStatus,
  type DaemonStatus,
  type LastOutcome,
  type MediumStatus,
  type Progress,
  type WaitingBundle,
} from './status.js';

export interface DaemonOptions {
  site: Site;
  mediaRoots: string[];
  pollMs: number;
  log: DaemonLog;
  notifier: Notifier;
  /** The watchdog interval systemd expects, or null. */
  watchdogMs: number | null;
  readRate?: number;
  mountinfo?: string;
  identityRoots?: IdentityRoots;
  /** Which mounts are accepted beyond the kernel's filesystems (FUSE drivers); default: none. */
  mediaPolicy?: MediaPolicy;
}

interface Medium {
  key: string;
  mount: MountEntry;
  status: MediumStatus;
  abort: AbortController;
  identity: MediaIdentity | null;
  /** Bundles to look at again (refused with a sequence gap, now perhaps importable); null: all of them. */
  retry: string[] | null;
  deferred: string[];
}

const short = (id: string) => id.slice(0, 8);

export function waitingMessage(a: Assembly): string {
  const n = a.meta.volumes.length;
  const next = a.missing[0];
  const which = next ? a.meta.volumes.indexOf(next) + 1 : n;
  return `insert volume ${which} of ${n} of bundle ${a.meta.station} #${a.meta.sequence} (${short(a.meta.bundle)})`;
}

export class ImportDaemon {
  private readonly media = new Map<string, Medium>();
  private readonly queue: Medium[] = [];
  private progress: Progress | null = null;
  private last: LastOutcome | null = null;
  private busy = false;
  private stopped = false;
  private wake: (() => void) | null = null;
  private lastWatchdog = 0;
  private lastStatusWrite = 0;
  private pollTimer: NodeJS.Timeout | null = null;
  private worker: Promise<void> | null = null;

  constructor(private readonly o: DaemonOptions) {}

  private get site(): Site {
    return this.o.site;
  }

  async start(): Promise<void> {
    for (const a of listAssemblies(this.site.home.root)) {
      this.o.log({
        event: 'bundle.waiting',
        bundle: a.meta.bundle,
        message: `${waitingMessage(a)} (kept from before)`,
      });
    }
    await this.poll();
    this.pollTimer = setInterval(() => void this.poll(), this.o.pollMs);
    this.worker = this.work();
    this.o.notifier.notify({ READY: '1', STATUS: this.statusLine() });
    this.o.log({
      event: 'daemon.started',
      message: `watching ${this.o.mediaRoots.join(', ')} for media`,
      mediaRoots: this.o.mediaRoots,
    });
    this.writeStatus(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.o.notifier.notify({ STOPPING: '1' });
    if (this.pollTimer) clearInterval(this.pollTimer);
    for (const m of this.media.values()) {
      m.abort.abort(new EcluseError('E_MEDIA_REMOVED', 'the daemon is stopping; nothing was promoted'));
    }
    this.wake?.();
    await this.worker;
    this.writeStatus(true, 'stopped');
    this.o.log({ event: 'daemon.stopped', message: 'stopped' });
  }

  // -------------------------------------------------------------------------------------------------------------
  // The mount table

  private async poll(): Promise<void> {
    if (this.stopped) return;
    let table: MountEntry[];
    try {
      table = mediaMounts(await readMountTable(this.o.mountinfo), this.o.mediaRoots);
    } catch (e) {
      this.o.log({ event: 'daemon.error', level: 'error', message: `cannot read the mount table: ${String(e)}` });
      return;
    }
    const seen = new Set<string>();
    for (const mount of table) {
      const key = mountKey(mount);
      seen.add(key);
      if (this.media.has(key)) continue;
      const m: Medium = {
        key,
        mount,
        abort: new AbortController(),
        identity: null,
        retry: null,
        deferred: [],
        status: { mountPoint: mount.mountPoint, device: mount.source, state: 'queued', message: 'waiting its turn' },
      };
      this.media.set(key, m);
      this.queue.push(m);
      this.o.log({
        event: 'media.mounted',
        media: mount.mountPoint,
        message: `${mount.source} on ${mount.mountPoint}`,
      });
      this.wake?.();
    }
    for (const [key, m] of this.media) {
      if (seen.has(key)) continue;
      this.media.delete(key);
      const i = this.queue.indexOf(m);
      if (i >= 0) this.queue.splice(i, 1);
      m.status.state = 'removed';
      m.abort.abort(new EcluseError('E_MEDIA_REMOVED', `${m.mount.mountPoint} was removed while it was being read`));
      this.o.log({ event: 'media.removed', media: m.mount.mountPoint, message: `${m.mount.mountPoint} removed` });
    }
    const now = Date.now();
    if (this.o.watchdogMs && now - this.lastWatchdog >= this.o.watchdogMs / 3) {
      this.lastWatchdog = now;
      this.o.notifier.notify({ WATCHDOG: '1' });
    }
    this.writeStatus(false);
  }

  // -------------------------------------------------------------------------------------------------------------
  // The worker: one medium at a time

  private async work(): Promise<void> {
    while (!this.stopped) {
      const next = await this.pickNext();
      if (!next) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 1000).unref();
        });
        this.wake = null;
        continue;
      }
      this.busy = true;
      try {
        await this.handleMedium(next);
      } catch (e) {
        const err = asEcluseError(e);
        this.o.log({ event: 'daemon.error', level: 'error', code: err.code, message: err.message });
      } finally {
        this.busy = false;
        this.progress = null;
        this.writeStatus(true);
      }
    }
  }

  /** The queued medium whose first bundle has the lowest (claimed, not yet verified) sequence number. */
  private async pickNext(): Promise<Medium | null> {
    if (this.queue.length === 0) return null;
    let best: { m: Medium; rank: [string, number] } | null = null;
    for (const m of this.queue) {
      let rank: [string, number] = ['~', Number.MAX_SAFE_INTEGER];
      try {
        for (const b of await inspectMedia(m.mount.mountPoint)) {
          const c = b.claimed;
          if (c && (c.station < rank[0] || (c.station === rank[0] && c.sequence < rank[1])))
            rank = [c.station, c.sequence];
        }
      } catch {
        // refused later, with the reason
      }
      if (!best || rank[0] < best.rank[0] || (rank[0] === best.rank[0] && rank[1] < best.rank[1])) best = { m, rank };
    }
    if (!best) return null;
    this.queue.splice(this.queue.indexOf(best.m), 1);
    return best.m;
  }

  private audit(e: Parameters<typeof appendAudit>[1]): void {
    appendAudit(this.site.db, e);
  }

  private refuseMedium(m: Medium, err: EcluseError): void {
    m.status.state = 'refused';
    m.status.message = `${err.code}: ${err.message}`;
    this.audit({
      kind: 'media.refused',
      outcome: 'refused',
      code: err.code,
      message: `${err.code}: ${err.message}`,
      media: m.mount.mountPoint,
      details: {
        check: err.context.check ?? null,
        fstype: m.mount.fstype,
        options: m.mount.options,
        superOptions: m.mount.superOptions,
        source: m.mount.source,
        identity: m.identity,
      },
    });
    this.setLast('refused', null, err, m);
    this.o.log({
      event: 'media.refused',
      level: 'warning',
      code: err.code,
      media: m.mount.mountPoint,
      message: err.line(),
    });
  }

  private setLast(
    outcome: LastOutcome['outcome'],
    bundle: string | null,
    err: EcluseError | null,
    m: Medium,
    message?: string,
  ) {
    this.last = {
      outcome,
      at: new Date().toISOString(),
      bundle,
      code: err?.code ?? null,
      message: message ?? (err ? err.line() : ''),
      media: m.mount.mountPoint,
    };
  }

  private async handleMedium(m: Medium): Promise<void> {
    m.status.state = 'reading';
    m.status.message = 'reading';
    this.writeStatus(true);
    m.identity = await mediaIdentity(m.mount, this.o.identityRoots).catch(() => null);
    let filesystem: MediaFilesystem;
    try {
      filesystem = checkMediaMount(m.mount, this.o.mediaPolicy ?? DEFAULT_MEDIA_POLICY);
    } catch (e) {
      this.refuseMedium(m, asEcluseError(e));
      return;
    }
    if (m.retry === null) {
      const who = m.identity ? describeIdentity(m.identity) : m.mount.source;
      this.audit({
        kind: 'media.inserted',
        outcome: 'info',
        message: `${who} mounted on ${m.mount.mountPoint} (${describeFilesystem(filesystem)}, ${m.mount.options.join(',')})`,
        media: m.mount.mountPoint,
        details: {
          identity: m.identity,
          filesystem: filesystem.filesystem,
          fuseDriver: filesystem.fuseDriver,
          fstype: m.mount.fstype,
          options: m.mount.options,
          superOptions: m.mount.superOptions,
          source: m.mount.source,
          warnings: mountWarnings(m.mount),
        },
      });
      this.o.log({
        event: 'media.accepted',
        media: m.mount.mountPoint,
        identity: m.identity,
        message: `reading ${who}`,
      });
    }
    let ids: string[];
    try {
      ids = await findBundles(m.mount.mountPoint);
    } catch (e) {
      this.refuseMedium(m, asEcluseError(e));
      return;
    }
    if (m.retry) ids = ids.filter((id) => m.retry?.includes(id));
    if (ids.length === 0 && m.retry === null) {
      const err = new EcluseError(
        'E_NO_BUNDLE',
        `no écluse bundle on ${m.mount.mountPoint} (looked in ecluse/bundles/)`,
      );
      this.refuseMedium(m, err);
      return;
    }
    m.retry = null;
    // Claimed order first (verified below, one by one): a medium with bundles 5, 6 and 7 imports them in order.
    const claimed = new Map<string, number>();
    for (const b of await inspectMedia(m.mount.mountPoint).catch(() => [])) {
      if (b.claimed) claimed.set(b.id, b.claimed.sequence);
    }
    ids.sort((a, b) => (claimed.get(a) ?? Infinity) - (claimed.get(b) ?? Infinity));
    for (const id of ids) {
      if (m.abort.signal.aborted || this.stopped) break;
      await this.handleBundle(m, id);
    }
    if (m.status.state === 'reading') {
      m.status.state = 'done';
      m.status.message = 'done: the media may be removed';
    }
    this.o.log({
      event: 'media.done',
      media: m.mount.mountPoint,
      message: `${m.mount.mountPoint}: ${m.status.message}`,
    });
  }

  private onRefused(m: Medium, id: string, err: EcluseError, already: boolean): void {
    if (!already) {
      this.audit({
        kind: 'import.refused',
        outcome: 'refused',
        code: err.code,
        message: err.line(),
        bundleId: id,
        media: m.mount.mountPoint,
        details: { check: err.context.check ?? null, volume: err.context.volume ?? null },
      });
    }
    if (err.code === 'E_SEQUENCE_GAP') m.deferred.push(id);
    m.status.message = `bundle ${short(id)} refused: ${err.line()}`;
    this.setLast('refused', id, err, m);
    this.o.log({
      event: 'import.refused',
      level: 'warning',
      bundle: id,
      code: err.code,
      artifact: typeof err.context.artifact === 'string' ? err.context.artifact : null,
      media: m.mount.mountPoint,
      message: err.line(),
    });
  }

  private onInterrupted(m: Medium, id: string, err: EcluseError, volume: string | null): void {
    this.audit({
      kind: 'import.interrupted',
      outcome: 'info',
      code: err.code,
      message: err.line(),
      bundleId: id,
      media: m.mount.mountPoint,
      details: { volume },
    });
    this.setLast('interrupted', id, err, m);
    this.o.log({
      event: 'import.interrupted',
      level: 'warning',
      bundle: id,
      code: err.code,
      media: m.mount.mountPoint,
      message: `${err.line()}${volume ? `; ${volume} will be read again from its start` : ''}`,
    });
  }

  private async handleBundle(m: Medium, id: string): Promise<void> {
    const media = m.mount.mountPoint;
    let b: BundleOnMedium;
    try {
      b = await verifyBundleOnMedium(this.site, media, id, { auditMedia: media });
    } catch (e) {
      this.onRefused(m, id, asEcluseError(e), true);
      return;
    }
    const p = b.statement.predicate;
    let assembly = findAssembly(this.site.home.root, id);
    if (assembly && assembly.meta.statementSha256 !== b.bundle.statementSha256) {
      this.onRefused(
        m,
        id,
        new EcluseError('E_FORMAT', `bundle ${id} on this medium carries another statement than the volumes kept`, {
          check: 'statement',
        }),
        false,
      );
      return;
    }
    if (!assembly && p.volumes.length === 1 && b.present.length === 1) {
      await this.importFrom(m, media, b, null);
      return;
    }
    assembly ??= createAssembly(this.site.home.root, b);
    const a: Assembly = assembly;
    const mediaVolumes = b.files.paths.volumes;
    for (const v of p.volumes) {
      if (!b.present.includes(v.name) || a.have.includes(v.name)) continue;
      const index = p.volumes.indexOf(v) + 1;
      this.progress = {
        bundle: id,
        station: p.station,
        sequence: p.sequence,
        phase: 'copying',
        mountPoint: media,
        volume: v.name,
        bytesDone: 0,
        bytesTotal: v.size,
        percent: 0,
      };
      m.status.message = `copying volume ${index} of ${p.volumes.length}`;
      this.writeStatus(true);
      try {
        await copyVolume(a, mediaVolumes, v, {
          signal: m.abort.signal,
          rate: this.o.readRate,
          onProgress: (n) => this.advance(n),
        });
      } catch (e) {
        const err = asEcluseError(e);
        this.progress = null;
        if (err.code === 'E_MEDIA_REMOVED') this.onInterrupted(m, id, err, v.name);
        else this.onRefused(m, id, err, false);
        return;
      }
      a.have.push(v.name);
      a.missing = a.missing.filter((x) => x !== v.name);
      this.audit({
        kind: 'volume.collected',
        outcome: 'info',
        message: `volume ${index} of ${p.volumes.length} (${v.name}) of bundle ${p.station} #${p.sequence} copied and verified`,
        bundleId: id,
        station: p.station,
        media,
        details: { volume: v.name, sha256: v.sha256, size: v.size },
      });
      this.o.log({
        event: 'volume.collected',
        bundle: id,
        media,
        volume: v.name,
        message: `${v.name} verified and kept`,
      });
    }
    this.progress = null;
    if (a.missing.length > 0) {
      const message = waitingMessage(a);
      m.status.message = `${message}; this medium may be removed`;
      this.audit({
        kind: 'bundle.waiting',
        outcome: 'info',
        message,
        bundleId: id,
        station: p.station,
        media,
        details: { have: a.have, missing: a.missing },
      });
      this.o.log({ event: 'bundle.waiting', bundle: id, media, missing: a.missing, message });
      this.writeStatus(true);
      return;
    }
    await this.importFrom(m, a.root, b, a);
  }

  private advance(n: number): void {
    if (!this.progress) return;
    this.progress.bytesDone += n;
    this.progress.percent = Math.floor((this.progress.bytesDone / Math.max(1, this.progress.bytesTotal)) * 100);
    this.writeStatus(false);
  }

  /** The ordinary pipeline, from the medium itself (one volume) or from the assembled copy. */
  private async importFrom(m: Medium, from: string, b: BundleOnMedium, a: Assembly | null): Promise<void> {
    const id = b.bundle.id;
    const p = b.statement.predicate;
    this.progress = {
      bundle: id,
      station: p.station,
      sequence: p.sequence,
      phase: 'importing',
      mountPoint: m.mount.mountPoint,
      volume: a ? null : (p.volumes[0]?.name ?? null),
      bytesDone: 0,
      bytesTotal: b.bundle.bytes,
      percent: 0,
    };
    m.status.message = `importing bundle ${p.station} #${p.sequence}`;
    this.writeStatus(true);
    this.o.log({ event: 'import.started', bundle: id, media: m.mount.mountPoint, message: m.status.message });
    try {
      const r = await runImport(this.site, {
        media: from,
        bundleId: id,
        mode: 'import',
        auditMedia: m.mount.mountPoint,
        // The assembled copy is ours: pulling the last stick no longer matters.
        ...(a ? {} : { signal: m.abort.signal, readRate: this.o.readRate }),
        onProgress: (done) => {
          if (this.progress) this.progress.bytesDone = done;
          this.advance(0);
        },
      });
      if (a) removeAssembly(a);
      const message = `bundle ${p.station} #${p.sequence} imported: ${r.images.map((i) => `${i.name} ${i.version}`).join(', ')}`;
      m.status.message = `${message}; the media may be removed`;
      this.setLast('accepted', id, null, m, message);
      for (const i of r.images) {
        this.o.log({
          event: 'image.promoted',
          bundle: id,
          artifact: `${i.name}@${i.version}`,
          image: i.id,
          message: `${i.name} ${i.version} is image ${i.id}`,
        });
      }
      this.o.log({ event: 'import.accepted', bundle: id, media: m.mount.mountPoint, sequence: p.sequence, message });
      this.retryDeferred();
    } catch (e) {
      const err = asEcluseError(e);
      if (err.code === 'E_MEDIA_REMOVED') {
        this.onInterrupted(m, id, err, p.volumes[0]?.name ?? null);
        return;
      }
      // The whole bundle was refused: what was kept of it is of no use.
      if (a) removeAssembly(a);
      this.onRefused(m, id, err, true);
    } finally {
      this.progress = null;
    }
  }

  /** After an import, media still mounted whose bundles waited for it are read again. */
  private retryDeferred(): void {
    for (const m of this.media.values()) {
      if (m.deferred.length === 0 || this.queue.includes(m)) continue;
      m.retry = m.deferred;
      m.deferred = [];
      m.status.state = 'queued';
      this.queue.push(m);
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Status

  private waiting(): WaitingBundle[] {
    return listAssemblies(this.site.home.root).map((a) => ({
      bundle: a.meta.bundle,
      station: a.meta.station,
      sequence: a.meta.sequence,
      volumes: a.meta.volumes.length,
      have: a.have,
      missing: a.missing,
      message: waitingMessage(a),
    }));
  }

  private statusLine(waiting: WaitingBundle[] = this.waiting()): string {
    const p = this.progress;
    if (p) {
      return p.phase === 'copying'
        ? `copying ${p.volume ?? ''} of bundle ${p.station} #${p.sequence}: ${p.percent}%`
        : `importing bundle ${p.station} #${p.sequence}: ${p.percent}%`;
    }
    if (waiting[0]) return waiting[0].message;
    if (this.last) return `idle; last: ${this.last.message}`;
    return 'idle: insert a medium';
  }

  private writeStatus(force: boolean, state?: 'stopped'): void {
    const now = Date.now();
    if (!force && now - this.lastStatusWrite < 250) return;
    this.lastStatusWrite = now;
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
            : this.busy
              ? 'reading'
              : 'idle'),
      message: state === 'stopped' ? 'the import daemon is not running' : this.statusLine(waiting),
      updatedAt: new Date(now).toISOString(),
      pid: process.pid,
      mediaRoots: this.o.mediaRoots.map((r) => path.resolve(r)),
      progress: this.progress ? { ...this.progress } : null,
      waiting,
      media: [...this.media.values()].map((m) => ({ ...m.status })),
      last: this.last,
    };
    try {
      writeStatus(this.site.home.root, s);
    } catch (e) {
      this.o.log({ event: 'daemon.error', level: 'error', message: `cannot write the status file: ${String(e)}` });
    }
    if (force) this.o.notifier.notify({ STATUS: s.message });
  }
}

export async function runDaemonUntilSignal(d: ImportDaemon): Promise<void> {
  await d.start();
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await Promise.race([d.stop(), sleep(10_000)]);
}
