import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { checkMediaMount, mountWarnings } from '../../../verifier/daemon/media-policy.js';
import { decodeMountField, mediaMounts, parseMountinfo } from '../../../verifier/daemon/mountinfo.js';
import { readStatus, statusRoutes, writeStatus, type DaemonStatus } from '../../../verifier/daemon/status.js';
import { EcluseError } from '../../../sneakernet/errors.js';

const TABLE = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '42 27 7:0 / /run/ecluse/media/sdb1 ro,nosuid,nodev,noexec,relatime - ext4 /dev/sdb1 ro,norecovery',
  '43 27 7:1 / /run/ecluse/media/my\\040stick ro,nosuid,nodev,noexec,relatime shared:5 - vfat /dev/sdc1 ro,fmask=0022',
  '44 27 7:2 / /run/ecluse/media/rw rw,nosuid,nodev,noexec,relatime - ext4 /dev/sdd1 rw',
  '45 27 7:3 / /run/ecluse/mediaX/sde1 ro,nosuid,nodev,noexec - ext4 /dev/sde1 ro',
  '46 27 0:50 / /run/ecluse/media/fuse ro,nosuid,nodev,noexec - fuse.sshfs host:/ ro',
].join('\n');

describe('mount table', () => {
  it('parses mountinfo, decodes octal escapes and optional fields, and keeps only mounts under the roots', () => {
    const all = parseMountinfo(TABLE);
    expect(all).toHaveLength(6);
    expect(all[2]).toMatchObject({
      mountPoint: '/run/ecluse/media/my stick',
      fstype: 'vfat',
      source: '/dev/sdc1',
      device: '7:1',
    });
    expect(decodeMountField('a\\011b\\134c\\012')).toBe('a\tb\\c\n');
    const media = mediaMounts(all, ['/run/ecluse/media']).map((m) => m.mountPoint);
    expect(media).toEqual([
      '/run/ecluse/media/sdb1',
      '/run/ecluse/media/my stick',
      '/run/ecluse/media/rw',
      '/run/ecluse/media/fuse',
    ]);
  });

  it('accepts only ro,nosuid,nodev,noexec mounts of vfat, exfat, iso9660 and ext4', () => {
    const [, ext4, vfat, rw, , fuse] = parseMountinfo(TABLE);
    expect(() => checkMediaMount(ext4!)).not.toThrow();
    expect(() => checkMediaMount(vfat!)).not.toThrow();
    const refusal = (m: typeof rw) => {
      try {
        checkMediaMount(m!);
      } catch (e) {
        return e as EcluseError;
      }
      throw new Error('accepted');
    };
    expect(refusal(rw)).toMatchObject({ code: 'E_MEDIA_REFUSED', context: { check: 'media-options' } });
    expect(refusal(rw).message).toContain('writable');
    expect(refusal(fuse)).toMatchObject({ code: 'E_MEDIA_REFUSED', context: { check: 'media-filesystem' } });
    const noexecMissing = { ...ext4!, options: ['ro', 'nosuid', 'nodev'] };
    expect(refusal(noexecMissing).message).toContain('missing noexec');
    const superRw = { ...ext4!, superOptions: ['rw'] };
    expect(refusal(superRw).message).toContain('writable underneath');
    expect(mountWarnings({ ...ext4!, superOptions: ['ro'] })).toHaveLength(1);
    expect(mountWarnings(ext4!)).toEqual([]);
  });
});

describe('status', () => {
  it('is written atomically, read back, reported stopped when the daemon is gone, and served as /status.json', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-status-'));
    try {
      expect(readStatus(home).state).toBe('stopped');
      const s: DaemonStatus = {
        state: 'waiting',
        message: 'insert volume 2 of 3 of bundle out-1 #4 (12345678)',
        updatedAt: new Date().toISOString(),
        pid: process.pid,
        mediaRoots: ['/run/ecluse/media'],
        progress: null,
        waiting: [],
        media: [],
        last: null,
      };
      writeStatus(home, s);
      expect(readStatus(home)).toEqual(s);
      expect(fs.readdirSync(path.join(home, 'daemon'))).toEqual(['status.json']);
      const app = express();
      app.use(statusRoutes(path.join(home, 'store', 'images')));
      const server = app.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      const port = (server.address() as { port: number }).port;
      const res = await fetch(`http://127.0.0.1:${port}/status.json`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ state: 'waiting', message: s.message });
      server.close();
      writeStatus(home, { ...s, pid: 2 ** 22 + 12345 });
      expect(readStatus(home)).toMatchObject({ state: 'stopped', message: 'the import daemon is not running' });
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
