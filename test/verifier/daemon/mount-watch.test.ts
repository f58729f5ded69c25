/**
 * The daemon's view of the mount table: a mount below the media roots is a medium; one that leaves the table is
 * removed (its reading aborted); and a stick pulled while busy, whose mount is left behind, is removed when its block
 * device leaves sysfs, its lingering mount never taken for a new medium. A real mountinfo text and a sysfs tree laid
 * out as the kernel's (dev/block/MAJ:MIN a link to the device's directory), in a temporary folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MountWatcher } from '../../../verifier/daemon/mount-watch.js';
import type { Medium } from '../../../verifier/daemon/medium.js';
import type { DaemonEvent } from '../../../verifier/daemon/log.js';

let dir: string;
let mountinfo: string;
let sys: string;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-mount-watch-'));
  mountinfo = path.join(dir, 'mountinfo');
  sys = path.join(dir, 'sys');
  fs.mkdirSync(path.join(sys, 'dev', 'block'), { recursive: true });
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const ROOT_LINE = '22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw';
const line = (id: number, device: string, source: string, at: string) =>
  `${id} 22 ${device} / ${at} ro,nosuid,nodev,noexec,noatime shared:${id} - vfat ${source} ro,fmask=0022`;

function table(...lines: string[]): void {
  fs.writeFileSync(mountinfo, [ROOT_LINE, ...lines, ''].join('\n'));
}

/** A USB stick's partition in the fake sysfs, as the kernel lays it out; returns its device directory. */
function plugStick(name: string, majorMinor: string): string {
  const device = path.join(sys, 'devices', 'pci0000:00', 'usb1', '1-1', 'host2', 'block', name.slice(0, 3), name);
  fs.mkdirSync(device, { recursive: true });
  fs.symlinkSync(device, path.join(sys, 'dev', 'block', majorMinor));
  return device;
}

function watcher() {
  const mounted: Medium[] = [];
  const removed: Medium[] = [];
  const logged: DaemonEvent[] = [];
  const w = new MountWatcher({
    mediaRoots: ['/run/ecluse/media'],
    mountinfo,
    sysRoot: sys,
    log: (e) => void logged.push(e),
    onMounted: (m) => void mounted.push(m),
    onRemoved: (m) => void removed.push(m),
  });
  return { w, mounted, removed, logged };
}

describe('MountWatcher', () => {
  it('a mount below the media roots is a medium; leaving the table, it is removed and its reading aborted', async () => {
    plugStick('sdb1', '8:17');
    const { w, mounted, removed } = watcher();
    table(line(40, '8:17', '/dev/sdb1', '/run/ecluse/media/sdb1'), line(41, '8:33', '/dev/sdc1', '/mnt/elsewhere'));
    expect(await w.poll()).toBe(true);
    expect(mounted.map((m) => m.mount.mountPoint)).toEqual(['/run/ecluse/media/sdb1']);
    const m = mounted[0] as Medium;
    expect(m.abort.signal.aborted).toBe(false);
    table();
    await w.poll();
    expect(removed).toEqual([m]);
    expect(m.abort.signal.aborted).toBe(true);
    expect(m.abort.signal.reason).toMatchObject({ code: 'E_MEDIA_REMOVED' });
    expect(w.media.size).toBe(0);
  });

  it('a stick pulled while its mount stays (busy) is removed when its device leaves sysfs', async () => {
    const device = plugStick('sdb1', '8:17');
    const { w, mounted, removed, logged } = watcher();
    const stale = line(40, '8:17', '/dev/sdb1', '/run/ecluse/media/sdb1');
    table(stale);
    await w.poll();
    expect(mounted).toHaveLength(1);
    await w.poll();
    expect(removed).toHaveLength(0);
    // Pulled: the kernel drops the device; the mount is left behind in the table.
    fs.rmSync(device, { recursive: true });
    await w.poll();
    expect(removed).toEqual(mounted);
    expect(mounted[0]?.abort.signal.aborted).toBe(true);
    expect(logged.find((e) => e.event === 'media.removed')?.message).toContain('/dev/sdb1 is gone');
    // The lingering mount is not a new medium, poll after poll.
    await w.poll();
    await w.poll();
    expect(mounted).toHaveLength(1);
    expect(w.media.size).toBe(0);
    // Plugged in again: a new mount over the same point is a new medium; the old one leaves the table for good.
    plugStick('sdc1', '8:33');
    table(stale, line(47, '8:33', '/dev/sdc1', '/run/ecluse/media/sdb1'));
    await w.poll();
    expect(mounted.map((m) => m.mount.source)).toEqual(['/dev/sdb1', '/dev/sdc1']);
    table(line(47, '8:33', '/dev/sdc1', '/run/ecluse/media/sdb1'));
    await w.poll();
    expect(removed).toHaveLength(1);
    expect(w.media.size).toBe(1);
  });

  it('a mount with no block device in sysfs (a FUSE mount) is removed only when it leaves the table', async () => {
    const { w, mounted, removed } = watcher();
    table(line(40, '0:61', 'fusefat', '/run/ecluse/media/fuse'));
    await w.poll();
    await w.poll();
    expect(mounted).toHaveLength(1);
    expect(removed).toHaveLength(0);
    table();
    await w.poll();
    expect(removed).toHaveLength(1);
  });

  it('an unreadable mount table is logged and changes nothing', async () => {
    const { w, logged } = watcher();
    expect(await w.poll()).toBe(false);
    expect(logged[0]).toMatchObject({ event: 'daemon.error', level: 'error' });
  });
});
