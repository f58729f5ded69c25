/**
 * Watching the mount table (inotify cannot see mounts, so it is polled): a mount that appears under the media roots
 * becomes a medium; one that disappears aborts whatever was reading it, since a pulled stick must never feed a
 * promotion.
 */
import { EcluseError } from '../../sneakernet/errors.js';
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
}

export class MountWatcher {
  /** The media mounted now, by mount key. */
  readonly media = new Map<string, Medium>();

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
      if (this.media.has(key)) continue;
      const m = newMedium(mount);
      this.media.set(key, m);
      this.o.log({
        event: 'media.mounted',
        media: mount.mountPoint,
        message: `${mount.source} on ${mount.mountPoint}`,
      });
      this.o.onMounted(m);
    }
    for (const [key, m] of this.media) {
      if (seen.has(key)) continue;
      this.media.delete(key);
      m.status.state = 'removed';
      m.abort.abort(new EcluseError('E_MEDIA_REMOVED', `${m.mount.mountPoint} was removed while it was being read`));
      this.o.log({ event: 'media.removed', media: m.mount.mountPoint, message: `${m.mount.mountPoint} removed` });
      this.o.onRemoved(m);
    }
    return true;
  }

  /** Aborts the reading of every medium (the daemon is stopping). */
  abortAll(reason: EcluseError): void {
    for (const m of this.media.values()) m.abort.abort(reason);
  }
}
