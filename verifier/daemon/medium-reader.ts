/**
 * Reading one medium when its turn comes: who it says it is (for the audit, never trusted), whether its mount may be
 * read at all (media-policy.ts), which bundles it holds, then each bundle in claimed sequence order (bundle-import.ts).
 * A medium refused here is audited with the reason and nothing on it is read.
 */
import { findBundles } from '../../sneakernet/bundle-files.js';
import { asEcluseError, EcluseError } from '../../sneakernet/errors.js';
import { inspectMedia } from '../../sneakernet/inspect.js';
import { appendAudit } from '../audit.js';
import type { Site } from '../site.js';
import type { BundleImporter } from './bundle-import.js';
import { describeIdentity, mediaIdentity, type IdentityRoots } from './identity.js';
import type { DaemonLog } from './log.js';
import {
  checkMediaMount,
  checkStickSerial,
  describeFilesystem,
  mountWarnings,
  type MediaFilesystem,
  type MediaPolicy,
} from './media-policy.js';
import type { Medium } from './medium.js';
import type { StatusPublisher } from './status-publisher.js';

export interface MediumReaderOptions {
  site: Site;
  log: DaemonLog;
  status: StatusPublisher;
  bundles: BundleImporter;
  mediaPolicy: MediaPolicy;
  identityRoots?: IdentityRoots;
  /** True once the daemon is stopping: no further bundle is started. */
  stopped: () => boolean;
}

export class MediumReader {
  constructor(private readonly o: MediumReaderOptions) {}

  private refuse(m: Medium, err: EcluseError): void {
    m.status.state = 'refused';
    m.refusedCode = err.code;
    m.status.message = `${err.code}: ${err.message}`;
    appendAudit(this.o.site.db, {
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
    this.o.status.setLast('refused', null, err, m);
    this.o.log({
      event: 'media.refused',
      level: 'warning',
      code: err.code,
      media: m.mount.mountPoint,
      message: err.line(),
    });
  }

  /** Checks the mount and records the medium; false when it is refused. */
  private async admit(m: Medium): Promise<boolean> {
    if (m.origin === 'inbox') {
      // Not a mount: a folder of the data-diode inbox, claimed into the daemon's private work folder (inbox.ts).
      if (m.retry !== null) return true;
      appendAudit(this.o.site.db, {
        kind: 'media.inserted',
        outcome: 'info',
        message: `inbox ${m.mount.source}: delivery claimed into ${m.mount.mountPoint}`,
        media: m.mount.mountPoint,
        details: { inbox: m.mount.source, identity: null },
      });
      this.o.log({ event: 'media.accepted', media: m.mount.mountPoint, message: `reading the inbox delivery` });
      return true;
    }
    m.identity = await mediaIdentity(m.mount, this.o.identityRoots).catch(() => null);
    let filesystem: MediaFilesystem;
    try {
      filesystem = checkMediaMount(m.mount, this.o.mediaPolicy);
      checkStickSerial(m.identity?.usb?.serial, this.o.mediaPolicy);
    } catch (e) {
      this.refuse(m, asEcluseError(e));
      return false;
    }
    if (m.retry !== null) return true; // read again for bundles that waited: recorded the first time
    const who = m.identity ? describeIdentity(m.identity) : m.mount.source;
    appendAudit(this.o.site.db, {
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
    this.o.log({ event: 'media.accepted', media: m.mount.mountPoint, identity: m.identity, message: `reading ${who}` });
    return true;
  }

  async read(m: Medium): Promise<void> {
    m.status.state = 'reading';
    m.status.message = 'reading';
    this.o.status.write(true);
    if (!(await this.admit(m))) return;
    let ids: string[];
    try {
      ids = await findBundles(m.mount.mountPoint);
    } catch (e) {
      this.refuse(m, asEcluseError(e));
      return;
    }
    if (m.retry) ids = ids.filter((id) => m.retry?.includes(id));
    if (ids.length === 0 && m.retry === null) {
      this.refuse(
        m,
        new EcluseError('E_NO_BUNDLE', `no écluse bundle on ${m.mount.mountPoint} (looked in ecluse/bundles/)`),
      );
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
      if (m.abort.signal.aborted || this.o.stopped()) break;
      await this.o.bundles.handleBundle(m, id);
    }
    if (m.status.state === 'reading') {
      m.status.state = 'done';
      m.status.message = 'the media may be removed';
    }
    this.o.log({
      event: 'media.done',
      media: m.mount.mountPoint,
      message: `${m.mount.mountPoint}: ${m.status.state}, ${m.status.message}`,
    });
  }
}
