/**
 * Watching the mount table (inotify cannot see mounts, so it is polled): a mount that appears under the media roots
 * becomes a medium; one that disappears aborts whatever was reading it, since a pulled stick must never feed a
 * promotion. A stick pulled while a file on it is open may leave its mount behind (the unmount fails while busy;
 * systemd does not try again): so a medium whose block device left sysfs is removed too, and its lingering mount is
 * never taken for a new medium.
 */
import fs from 'node:fs';
import { EcluseError } from '../../sneakernet/errors.js';
import { blockSysPath } from './identity.js';
import type { DaemonLog } from './log.js';
import { newMedium, type Medium } from './medium.js';
import { mediaMounts, mountKey, readMountTable, type MountEntry } from './mountinfo.js';

export interface MountWatchOptions {
  mediaRoots: string[];
  /** The mount table to read (tests); default /proc/self/mountinfo. */
  mountinfo?: string;
  log: DaemonLog;
  onMounted(m: Medium): void;
  onRemoved(m: Medium): void;
  /** Where sysfs is (tests); default /sys. */
  sysRoot?: string;
}

export class MountWatcher {
  /** The media mounted now, by mount key. */
  readonly media = new Map<string, Medium>();
  /** The sysfs directory of each medium's block device, by mount key (none: not a block device here). */
  private readonly devices = new Map<string, string>();
  /** Mounts left behind by a device that is gone: not media, until they leave the table. */
  private readonly lingering = new Set<string>();

  constructor(private readonly o: MountWatchOptions) {}

  /** Reads the table once; false when it could not be read (logged). */
  async poll(): Promise<boolean> {
    let table: MountEntry[];
    try {
      table = mediaMounts(await readMountTable(this.o.mountinfo), this.o.mediaRoots);
    } catch (e) {
      this.o.log({ event: 'daemon.error', level: 'error', message: `cannot read the mount table: ${String(e)}` });
      return false;
    }
    const seen = new Set<string>();
    for (const mount of table) {
      const key = mountKey(mount);
      seen.add(key);
      if (this.media.has(key) || this.lingering.has(key)) continue;
      const m = newMedium(mount);
      this.media.set(key, m);
      const device = blockSysPath(mount, { sys: this.o.sysRoot ?? '/sys' });
      if (device) this.devices.set(key, device);
      this.o.log({
        event: 'media.mounted',
        media: mount.mountPoint,
        message: `${mount.source} on ${mount.mountPoint}`,
      });
      this.o.onMounted(m);
    }
    for (const key of this.lingering) if (!seen.has(key)) this.lingering.delete(key);
    for (const [key, m] of this.media) {
      const device = this.devices.get(key);
      const deviceGone = device !== undefined && !fs.existsSync(device);
      if (seen.has(key) && !deviceGone) continue;
      if (seen.has(key)) this.lingering.add(key);
      this.media.delete(key);
      this.devices.delete(key);
      m.status.state = 'removed';
      m.abort.abort(new EcluseError('E_MEDIA_REMOVED', `${m.mount.mountPoint} was removed while it was being read`));
      this.o.log({
        event: 'media.removed',
        media: m.mount.mountPoint,
        message: deviceGone
          ? `${m.mount.source} is gone (its mount on ${m.mount.mountPoint} is left behind)`
          : `${m.mount.mountPoint} removed`,
      });
      this.o.onRemoved(m);
    }
    return true;
  }

  /** Aborts the reading of every medium (the daemon is stopping). */
  abortAll(reason: EcluseError): void {
    for (const m of this.media.values()) m.abort.abort(reason);
  }
}
