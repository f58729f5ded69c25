/**
 * USB hotplug: the daemon learns of a stick the moment it is plugged in, before anything mounts it, so the operator's
 * screen says "stick ECLUSE0007 inserted, mounting..." at once, and says so when the stick is never mounted (no
 * filesystem écluse reads, e.g. NTFS, or a damaged one) within the mount timeout, audited with its USB identity.
 *
 * Attach and detach events come from a `UsbDeviceSource`: the `usb` package (libusb through libudev; usb-source.ts)
 * on a station, a fake in the tests. Only the device's sysfs name (`1-2.3`) is taken from the event: the identity
 * (vendor, product, serial) is read from sysfs, since the daemon may not open the device (no /dev in its sandbox). An
 * identity is recorded, never trusted: a site may list its own sticks' serials (`--allow-stick-serial`), which keeps
 * strangers' sticks out of the way, but a serial is trivially forged and is no authentication; bundles are verified
 * all the same.
 */
import fs from 'node:fs';
import path from 'node:path';
import { appendAudit } from '../audit.js';
import type { Db } from '../db.js';
import type { DaemonLog } from './log.js';
import type { Medium } from './medium.js';
import { blockSysPath, readUsbAttributes, type IdentityRoots, type UsbIdentity } from './identity.js';
import type { StickState, StickStatus } from './status.js';
export type { StickState, StickStatus };

/** Where attach/detach events come from. `sysName` is the device's name under /sys/bus/usb/devices (`1-2.3`). */
export interface UsbDeviceSource {
  readonly name: string;
  start(events: { attach(sysName: string): void; detach(sysName: string): void }): void;
  stop(): void;
}

/** One USB mass-storage device plugged in now, as the status file shows it. */

export interface UsbSticksOptions {
  source: UsbDeviceSource;
  db: Db;
  log: DaemonLog;
  /** How long a stick may take to be mounted before it is reported as not mountable. */
  mountTimeoutMs: number;
  /** The site's own sticks, by serial (identity, not authentication); null: any stick. */
  allowedSerials: readonly string[] | null;
  roots: Pick<IdentityRoots, 'sys'>;
  /** Something the operator sees changed. */
  onChange(): void;
}

const MASS_STORAGE_CLASS = '08';

/** The name a stick goes by in messages: its serial, else vendor:product. */
export function stickLabel(u: UsbIdentity): string {
  return u.serial ?? `${u.vendorId ?? '?'}:${u.productId ?? '?'}`;
}

export class UsbSticks {
  private readonly sticks = new Map<string, StickStatus & { sysPath: string; at: number }>();
  private readonly pending = new Set<string>();

  constructor(private readonly o: UsbSticksOptions) {}

  start(): void {
    this.o.source.start({ attach: (n) => void this.attach(n), detach: (n) => this.detach(n) });
  }

  stop(): void {
    this.o.source.stop();
  }

  list(): StickStatus[] {
    return [...this.sticks.values()].map(({ device, usb, state, since, message }) => ({
      device,
      usb,
      state,
      since,
      message,
    }));
  }

  private deviceDir(sysName: string): string {
    return path.join(this.o.roots.sys, 'bus', 'usb', 'devices', sysName);
  }

  /** True when one of the device's interfaces is mass storage; interfaces appear just after the device: wait a little. */
  private async isMassStorage(dir: string, sysName: string): Promise<boolean> {
    for (let i = 0; i < 15; i++) {
      try {
        for (const e of fs.readdirSync(dir)) {
          if (!e.startsWith(`${sysName}:`)) continue;
          const cls = fs.readFileSync(path.join(dir, e, 'bInterfaceClass'), 'utf8').trim();
          if (cls === MASS_STORAGE_CLASS) return true;
        }
      } catch {
        return false; // gone already
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    return false;
  }

  async attach(sysName: string): Promise<void> {
    if (!/^\d+-[\d.]+$/.test(sysName) || this.sticks.has(sysName) || this.pending.has(sysName)) return;
    this.pending.add(sysName);
    try {
      const dir = this.deviceDir(sysName);
      if (!(await this.isMassStorage(dir, sysName))) return;
      let sysPath: string;
      try {
        sysPath = fs.realpathSync(dir);
      } catch {
        return;
      }
      const usb = readUsbAttributes(sysPath);
      const label = stickLabel(usb);
      const allowed =
        this.o.allowedSerials === null || (usb.serial !== null && this.o.allowedSerials.includes(usb.serial));
      const now = Date.now();
      const stick = {
        device: sysName,
        usb,
        sysPath,
        at: now,
        since: new Date(now).toISOString(),
        state: (allowed ? 'mounting' : 'not-allowed') as StickState,
        message: allowed
          ? `stick ${label} inserted, mounting...`
          : `stick ${label} is not one of this site's sticks (serial not allowed): it will not be read; remove it`,
      };
      this.sticks.set(sysName, stick);
      this.o.log({ event: 'usb.attached', media: sysName, identity: usb, message: stick.message });
      if (!allowed) {
        appendAudit(this.o.db, {
          kind: 'media.refused',
          outcome: 'refused',
          code: 'E_MEDIA_REFUSED',
          message: `E_MEDIA_REFUSED: ${stick.message}`,
          media: sysName,
          details: { check: 'stick-serial', usb },
        });
      }
      this.o.onChange();
    } finally {
      this.pending.delete(sysName);
    }
  }

  detach(sysName: string): void {
    const s = this.sticks.get(sysName);
    if (!s) return;
    this.sticks.delete(sysName);
    this.o.log({ event: 'usb.detached', media: sysName, message: `stick ${stickLabel(s.usb)} removed` });
    this.o.onChange();
  }

  /** Matches sticks waiting to be mounted with the media mounted now; reports those past the timeout. */
  tick(
    media: Iterable<Medium>,
    sysOf: (m: Medium) => string | null = (m) => blockSysPath(m.mount, this.o.roots),
  ): void {
    const waiting = [...this.sticks.values()].filter((s) => s.state === 'mounting' || s.state === 'not-mounted');
    if (waiting.length === 0) return;
    const mounted = [...media].filter((m) => m.origin === 'mount').map(sysOf);
    for (const s of waiting) {
      if (mounted.some((p) => p !== null && p.startsWith(`${s.sysPath}/`))) {
        s.state = 'mounted';
        s.message = `stick ${stickLabel(s.usb)} mounted`;
        this.o.onChange();
        continue;
      }
      if (s.state === 'mounting' && Date.now() - s.at > this.o.mountTimeoutMs) {
        s.state = 'not-mounted';
        s.message =
          `stick ${stickLabel(s.usb)} was not mounted within ${Math.round(this.o.mountTimeoutMs / 1000)} s: it holds ` +
          'no filesystem écluse reads (vfat, exfat, iso9660, ext4) or a damaged one; remove it and check it on ' +
          'another machine, or export onto a freshly formatted stick';
        appendAudit(this.o.db, {
          kind: 'media.unmountable',
          outcome: 'refused',
          code: 'E_MEDIA_REFUSED',
          message: `E_MEDIA_REFUSED: ${s.message}`,
          media: s.device,
          details: { check: 'media-not-mounted', usb: s.usb, timeoutMs: this.o.mountTimeoutMs },
        });
        this.o.log({
          event: 'usb.not-mounted',
          level: 'warning',
          code: 'E_MEDIA_REFUSED',
          media: s.device,
          identity: s.usb,
          message: s.message,
        });
        this.o.onChange();
      }
    }
  }
}
