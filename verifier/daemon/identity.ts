/**
 * Who the medium says it is, for the audit log (never trusted for anything): the kernel device name, the filesystem
 * UUID and label (from udev's /dev/disk/by-uuid and by-label links, else `blkid` when it may read the device), and
 * for USB sticks the vendor, product and serial the device reports, read from sysfs (no USB library needed).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { MountEntry } from './mountinfo.js';

export interface UsbIdentity {
  vendorId: string | null;
  productId: string | null;
  manufacturer: string | null;
  product: string | null;
  serial: string | null;
}

export interface MediaIdentity {
  /** Kernel name (`sdb1`), or null when the mount has no block device. */
  kernelName: string | null;
  devicePath: string | null;
  majorMinor: string;
  fsUuid: string | null;
  fsLabel: string | null;
  usb: UsbIdentity | null;
}

/** Roots, replaceable in tests. */
export interface IdentityRoots {
  sys: string;
  dev: string;
  /** udev's database (`/run/udev/data/b<major>:<minor>`), readable inside the sandbox where /dev is private. */
  udevData: string;
  blkid: string | null;
}

const DEFAULT_ROOTS: IdentityRoots = {
  sys: '/sys',
  dev: '/dev',
  udevData: '/run/udev/data',
  blkid: '/usr/sbin/blkid',
};

function udevProperties(roots: IdentityRoots, majorMinor: string): Map<string, string> {
  const out = new Map<string, string>();
  try {
    for (const line of fs.readFileSync(path.join(roots.udevData, `b${majorMinor}`), 'utf8').split('\n')) {
      const m = /^E:([A-Z0-9_]+)=(.*)$/.exec(line);
      if (m?.[1] && m[2] !== undefined) out.set(m[1], m[2].slice(0, 256));
    }
  } catch {
    // no udev database (containers, tests): other sources
  }
  return out;
}

function readAttr(file: string): string | null {
  try {
    const v = fs.readFileSync(file, 'utf8').trim();
    return v === '' ? null : v.slice(0, 256);
  } catch {
    return null;
  }
}

/** udev's symlinks in /dev/disk/by-<kind>/ that point at the device; the name is the value (with \x escapes). */
function byLink(roots: IdentityRoots, kind: 'uuid' | 'label', kernelName: string): string | null {
  const dir = path.join(roots.dev, 'disk', `by-${kind}`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return null;
  }
  for (const name of names) {
    try {
      if (path.basename(fs.readlinkSync(path.join(dir, name))) === kernelName) {
        return name.replace(/\\x([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
      }
    } catch {
      // not a link: ignore
    }
  }
  return null;
}

function blkid(bin: string, device: string): Promise<{ uuid: string | null; label: string | null }> {
  return new Promise((resolve) => {
    execFile(bin, ['-o', 'export', device], { timeout: 3000 }, (err, stdout) => {
      if (err) return resolve({ uuid: null, label: null });
      const get = (k: string) => new RegExp(`^${k}=(.*)$`, 'm').exec(stdout)?.[1]?.slice(0, 256) ?? null;
      resolve({ uuid: get('UUID'), label: get('LABEL') });
    });
  });
}

/** The identity attributes of a USB device's sysfs folder. */
export function readUsbAttributes(dir: string): UsbIdentity {
  return {
    vendorId: readAttr(path.join(dir, 'idVendor')),
    productId: readAttr(path.join(dir, 'idProduct')),
    manufacturer: readAttr(path.join(dir, 'manufacturer')),
    product: readAttr(path.join(dir, 'product')),
    serial: readAttr(path.join(dir, 'serial')),
  };
}

/** Walks up from the block device in sysfs to the USB device that holds it, if any. */
export function usbIdentity(sysDevice: string): UsbIdentity | null {
  let dir = sysDevice;
  for (let i = 0; i < 16 && dir !== path.dirname(dir); i++, dir = path.dirname(dir)) {
    if (fs.existsSync(path.join(dir, 'idVendor'))) return readUsbAttributes(dir);
  }
  return null;
}

/**
 * The block device behind the mount: its own device number for kernel filesystems (and fuseblk); for a FUSE driver
 * that opened the device itself (fuse.fusefat, whose mount has an anonymous device number), the device its mount
 * source names, when that is a block device here.
 */
function blockDevice(m: MountEntry, roots: IdentityRoots): { majorMinor: string; sysDevice: string } | null {
  const sysOf = (majorMinor: string) => {
    try {
      return fs.realpathSync(path.join(roots.sys, 'dev', 'block', majorMinor));
    } catch {
      return null;
    }
  };
  const own = sysOf(m.device);
  if (own) return { majorMinor: m.device, sysDevice: own };
  if (!m.fstype.startsWith('fuse') || !m.source.startsWith('/dev/')) return null;
  try {
    const st = fs.statSync(m.source, { bigint: true });
    if (!st.isBlockDevice()) return null;
    // Linux's dev_t: major in bits 8-19 and 32-43, minor in bits 0-7 and 20-31.
    const major = ((st.rdev >> 8n) & 0xfffn) | ((st.rdev >> 32n) & ~0xfffn);
    const minor = (st.rdev & 0xffn) | ((st.rdev >> 12n) & ~0xffn);
    const majorMinor = `${major}:${minor}`;
    const sysDevice = sysOf(majorMinor);
    return sysDevice ? { majorMinor, sysDevice } : null;
  } catch {
    return null;
  }
}

/** The sysfs path of the block device behind a mount (to match it with the USB device holding it), or null. */
export function blockSysPath(m: MountEntry, roots: Pick<IdentityRoots, 'sys'> = DEFAULT_ROOTS): string | null {
  return blockDevice(m, { ...DEFAULT_ROOTS, ...roots })?.sysDevice ?? null;
}

export async function mediaIdentity(m: MountEntry, roots: IdentityRoots = DEFAULT_ROOTS): Promise<MediaIdentity> {
  const block = blockDevice(m, roots);
  const sysDevice = block?.sysDevice ?? null;
  const majorMinor = block?.majorMinor ?? m.device;
  const kernelName = sysDevice ? path.basename(sysDevice) : null;
  const devicePath = kernelName ? path.join(roots.dev, kernelName) : m.source.startsWith('/dev/') ? m.source : null;
  const udev = udevProperties(roots, majorMinor);
  let fsUuid = udev.get('ID_FS_UUID') ?? (kernelName ? byLink(roots, 'uuid', kernelName) : null);
  let fsLabel = udev.get('ID_FS_LABEL') ?? (kernelName ? byLink(roots, 'label', kernelName) : null);
  if (fsUuid === null && devicePath && roots.blkid && fs.existsSync(roots.blkid)) {
    const b = await blkid(roots.blkid, devicePath);
    fsUuid = b.uuid;
    fsLabel = fsLabel ?? b.label;
  }
  return {
    kernelName,
    devicePath,
    majorMinor,
    fsUuid,
    fsLabel,
    usb:
      (sysDevice ? usbIdentity(sysDevice) : null) ??
      (udev.get('ID_BUS') === 'usb'
        ? {
            vendorId: udev.get('ID_VENDOR_ID') ?? null,
            productId: udev.get('ID_MODEL_ID') ?? null,
            manufacturer: udev.get('ID_VENDOR') ?? null,
            product: udev.get('ID_MODEL') ?? null,
            serial: udev.get('ID_SERIAL_SHORT') ?? null,
          }
        : null),
  };
}

/** One short line: `sdb1 (UUID 1234-ABCD, label STICK, USB 0781:5583 SanDisk Ultra serial 4C53...)`. */
export function describeIdentity(id: MediaIdentity): string {
  const parts: string[] = [];
  if (id.fsUuid) parts.push(`UUID ${id.fsUuid}`);
  if (id.fsLabel) parts.push(`label ${id.fsLabel}`);
  if (id.usb) {
    const u = id.usb;
    parts.push(
      `USB ${u.vendorId ?? '?'}:${u.productId ?? '?'}${u.manufacturer ? ` ${u.manufacturer}` : ''}${u.product ? ` ${u.product}` : ''}${u.serial ? ` serial ${u.serial}` : ''}`,
    );
  }
  return `${id.kernelName ?? id.majorMinor}${parts.length ? ` (${parts.join(', ')})` : ''}`;
}
