/**
 * USB hotplug through its interface: a fake device source (we have no USB hardware here) drives attach/detach over a
 * sysfs tree made by the test, laid out as the kernel lays it out (/sys/bus/usb/devices/1-2 linking to the device,
 * its interfaces `1-2:1.0` with bInterfaceClass, and the block device below it). The real `usb` package is loaded
 * too, and its source starts and stops.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDb, setSetting, type Db } from '../../../verifier/db.js';
import type { DaemonEvent } from '../../../verifier/daemon/log.js';
import { newMedium } from '../../../verifier/daemon/medium.js';
import { checkStickSerial } from '../../../verifier/daemon/media-policy.js';
import { libusbSource, sysNameOf } from '../../../verifier/daemon/usb-source.js';
import { UsbSticks, type UsbDeviceSource } from '../../../verifier/daemon/usb-sticks.js';
import { EcluseError } from '../../../sneakernet/errors.js';

let dir: string;
let db: Db;
let sys: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-usb-'));
  db = openDb(dir);
  setSetting(db, 'site_id', 'unit');
  sys = path.join(dir, 'sys');
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A device in the fake sysfs: its folder under /sys/devices, the /sys/bus/usb/devices link, its interface. */
function plugDevice(name: string, o: { serial?: string; interfaceClass?: string; block?: string }): string {
  const real = path.join(sys, 'devices', 'pci0000:00', '0000:00:04.0', 'usb1', name);
  fs.mkdirSync(path.join(real, `${name}:1.0`), { recursive: true });
  const attrs: Record<string, string | undefined> = {
    idVendor: '0781',
    idProduct: '5583',
    manufacturer: 'SanDisk',
    product: 'Ultra Fit',
    serial: o.serial,
  };
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) fs.writeFileSync(path.join(real, k), `${v}\n`);
  fs.writeFileSync(path.join(real, `${name}:1.0`, 'bInterfaceClass'), `${o.interfaceClass ?? '08'}\n`);
  fs.mkdirSync(path.join(sys, 'bus', 'usb', 'devices'), { recursive: true });
  fs.symlinkSync(real, path.join(sys, 'bus', 'usb', 'devices', name));
  if (o.block) {
    const block = path.join(real, `${name}:1.0`, 'host0', 'target0:0:0', '0:0:0:0', 'block', 'sda', o.block);
    fs.mkdirSync(block, { recursive: true });
    return block;
  }
  return real;
}

class FakeSource implements UsbDeviceSource {
  readonly name = 'fake';
  events: { attach(n: string): void; detach(n: string): void } | null = null;
  stopped = false;
  start(e: { attach(n: string): void; detach(n: string): void }) {
    this.events = e;
  }
  stop() {
    this.stopped = true;
  }
}

function sticks(o: { timeoutMs?: number; allowed?: string[] } = {}) {
  const source = new FakeSource();
  const events: DaemonEvent[] = [];
  let changes = 0;
  const s = new UsbSticks({
    source,
    db,
    log: (e) => events.push(e),
    mountTimeoutMs: o.timeoutMs ?? 60_000,
    allowedSerials: o.allowed ?? null,
    roots: { sys },
    onChange: () => changes++,
  });
  s.start();
  return { s, source, events, changes: () => changes };
}

const audit = () =>
  db.prepare('SELECT kind, outcome, code, message, details FROM audit ORDER BY seq').all() as Array<{
    kind: string;
    outcome: string;
    code: string | null;
    message: string;
    details: string;
  }>;

const mediumOn = (sysPath: string) => {
  const m = newMedium({
    id: 40,
    parentId: 1,
    device: '8:1',
    root: '/',
    mountPoint: '/run/ecluse/media/sda1',
    options: ['ro'],
    fstype: 'vfat',
    source: '/dev/sda1',
    superOptions: ['ro'],
  });
  return { m, sysPath };
};

describe('USB sticks (hotplug)', () => {
  it('shows a stick the moment it is plugged in, then mounted once its partition is mounted', async () => {
    const { s, source, events, changes } = sticks();
    const block = plugDevice('1-2', { serial: 'ECLUSE0007', block: 'sda1' });
    await (source.events?.attach('1-2') as unknown as Promise<void>);
    await new Promise((r) => setTimeout(r, 10));
    expect(s.list()).toEqual([
      expect.objectContaining({
        device: '1-2',
        state: 'mounting',
        message: 'stick ECLUSE0007 inserted, mounting...',
        usb: {
          vendorId: '0781',
          productId: '5583',
          manufacturer: 'SanDisk',
          product: 'Ultra Fit',
          serial: 'ECLUSE0007',
        },
      }),
    ]);
    expect(events.find((e) => e.event === 'usb.attached')).toMatchObject({ media: '1-2' });
    expect(changes()).toBeGreaterThan(0);
    // Nothing mounted yet: still mounting.
    s.tick([], () => null);
    expect(s.list()[0]?.state).toBe('mounting');
    const { m, sysPath } = mediumOn(fs.realpathSync(block));
    s.tick([m], () => sysPath);
    expect(s.list()[0]).toMatchObject({ state: 'mounted', message: 'stick ECLUSE0007 mounted' });
    source.events?.detach('1-2');
    expect(s.list()).toEqual([]);
    expect(events.find((e) => e.event === 'usb.detached')?.message).toBe('stick ECLUSE0007 removed');
    s.stop();
    expect(source.stopped).toBe(true);
  });

  it('reports, and audits with its USB identity, a stick never mounted within the timeout', async () => {
    const { s, source, events } = sticks({ timeoutMs: 50 });
    plugDevice('3-1.4', { serial: 'NTFS0001' });
    await s.attach('3-1.4');
    expect(s.list()[0]?.state).toBe('mounting');
    await new Promise((r) => setTimeout(r, 80));
    s.tick([], () => null);
    const stick = s.list()[0];
    expect(stick?.state).toBe('not-mounted');
    expect(stick?.message).toMatch(/^stick NTFS0001 was not mounted within 0 s: it holds no filesystem écluse reads/);
    expect(events.find((e) => e.event === 'usb.not-mounted')).toMatchObject({
      level: 'warning',
      code: 'E_MEDIA_REFUSED',
    });
    const rows = audit().filter((a) => a.kind === 'media.unmountable');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ outcome: 'refused', code: 'E_MEDIA_REFUSED' });
    expect(JSON.parse(rows[0]?.details ?? '{}')).toMatchObject({
      check: 'media-not-mounted',
      usb: { serial: 'NTFS0001', vendorId: '0781' },
    });
    // Reported once, not on every tick.
    s.tick([], () => null);
    expect(audit().filter((a) => a.kind === 'media.unmountable')).toHaveLength(1);
    expect(source.events).not.toBeNull();
  });

  it('ignores devices that are not mass storage (a keyboard) and names it can not be', async () => {
    const { s } = sticks();
    plugDevice('1-3', { serial: 'KBD', interfaceClass: '03' });
    await s.attach('1-3');
    await s.attach('../../etc');
    expect(s.list()).toEqual([]);
    expect(audit()).toEqual([]);
  });

  it('with a list of site sticks, a stranger is shown and audited as not allowed (identity, not authentication)', async () => {
    const { s } = sticks({ allowed: ['ECLUSE0007'] });
    plugDevice('1-2', { serial: 'STRANGER' });
    await s.attach('1-2');
    expect(s.list()[0]).toMatchObject({ state: 'not-allowed' });
    expect(s.list()[0]?.message).toContain('stick STRANGER is not one of this site');
    expect(audit()).toEqual([
      expect.objectContaining({ kind: 'media.refused', outcome: 'refused', code: 'E_MEDIA_REFUSED' }),
    ]);
    // The reader refuses its mount for the same reason.
    const err = (() => {
      try {
        checkStickSerial('STRANGER', { allowFuseDrivers: false, allowedSerials: ['ECLUSE0007'] });
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(EcluseError);
    expect(err).toMatchObject({ code: 'E_MEDIA_REFUSED', context: { check: 'stick-serial' } });
    expect(() =>
      checkStickSerial('ECLUSE0007', { allowFuseDrivers: false, allowedSerials: ['ECLUSE0007'] }),
    ).not.toThrow();
    expect(() => checkStickSerial(null, { allowFuseDrivers: false })).not.toThrow();
  });

  it('loads the real usb package; its source names devices as sysfs does and starts and stops', async () => {
    expect(sysNameOf({ busNumber: 1, portNumbers: [2, 3] })).toBe('1-2.3');
    expect(sysNameOf({ busNumber: 1, portNumbers: [] })).toBeNull();
    const source = await libusbSource();
    expect(source.name).toBe('libusb');
    const seen: string[] = [];
    source.start({ attach: (n) => seen.push(n), detach: (n) => seen.push(n) });
    source.stop();
    expect(seen).toEqual([]);
  });
});
