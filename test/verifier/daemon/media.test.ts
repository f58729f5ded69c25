import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { checkMediaMount, describeFilesystem, mountWarnings } from '../../../verifier/daemon/media-policy.js';
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

describe('FUSE drivers (--allow-fuse-drivers)', () => {
  // What mountinfo shows for Debian's fusefat, fuseiso and exfat-fuse mounts (seen on a kernel without vfat).
  const FUSE = [
    '50 27 0:39 / /m/fat ro,nosuid,nodev,noexec,relatime - fuse.fusefat /dev/loop0 ro,user_id=0,group_id=0,allow_other',
    '51 27 0:40 / /m/iso ro,nosuid,nodev,noexec,relatime - fuse.fuseiso /dev/loop1 ro,user_id=0,group_id=0,allow_other',
    '52 27 7:2 / /m/exfat ro,nosuid,nodev,relatime - fuseblk /dev/loop2 ro,user_id=0,group_id=0,default_permissions',
    '53 27 0:41 / /m/plain ro,nosuid,nodev,noexec,relatime - fuse /dev/loop3 ro,user_id=0,group_id=0',
    '54 27 0:42 / /m/fatexec ro,nosuid,nodev,relatime - fuse.fusefat /dev/loop4 ro,user_id=0,group_id=0',
    '55 27 0:43 / /m/fatrw rw,nosuid,nodev,noexec,relatime - fuse.fusefat /dev/loop5 rw,user_id=0,group_id=0',
  ].join('\n');
  const [fat, iso, exfat, plain, fatExec, fatRw] = parseMountinfo(FUSE);
  const allow = { allowFuseDrivers: true };
  const refusal = (m: ReturnType<typeof parseMountinfo>[number] | undefined, policy = allow) => {
    try {
      checkMediaMount(m!, policy);
    } catch (e) {
      return e as EcluseError;
    }
    throw new Error('accepted');
  };

  it('are refused by default, saying how to accept them', () => {
    const e = refusal(fat, { allowFuseDrivers: false });
    expect(e).toMatchObject({
      code: 'E_MEDIA_REFUSED',
      context: { check: 'media-filesystem', fstype: 'fuse.fusefat' },
    });
    expect(e.message).toContain('vfat served by the FUSE driver fusefat');
    expect(e.message).toContain('--allow-fuse-drivers');
    expect(refusal(iso, { allowFuseDrivers: false }).message).toContain('iso9660 served by the FUSE driver fuseiso');
  });

  it('when allowed, map fusefat to vfat and fuseiso to iso9660, and still require ro,nosuid,nodev,noexec', () => {
    const f = checkMediaMount(fat!, allow);
    expect(f).toEqual({ filesystem: 'vfat', fuseDriver: 'fuse.fusefat' });
    expect(describeFilesystem(f)).toBe('vfat via fuse.fusefat');
    expect(checkMediaMount(iso!, allow)).toEqual({ filesystem: 'iso9660', fuseDriver: 'fuse.fuseiso' });
    expect(refusal(fatExec).message).toContain('missing noexec');
    expect(refusal(fatRw)).toMatchObject({ context: { check: 'media-options' } });
    expect(refusal(fatRw).message).toContain('writable');
    expect(mountWarnings(fat!)).toEqual(['vfat served in user space by the FUSE driver fusefat, not by the kernel']);
    expect(checkMediaMount(parseMountinfo(TABLE)[1]!, allow)).toEqual({ filesystem: 'ext4', fuseDriver: null });
  });

  it('other FUSE filesystems stay refused even when allowed: fuseblk (exfat-fuse, ntfs-3g), a bare fuse, sshfs', () => {
    expect(refusal(exfat).message).toContain('fuseblk does not say which driver serves it');
    expect(refusal(plain).message).toContain('FUSE filesystem (fuse) not known');
    const sshfs = parseMountinfo(TABLE)[5];
    expect(refusal(sshfs)).toMatchObject({ code: 'E_MEDIA_REFUSED', context: { check: 'media-filesystem' } });
    expect(refusal(sshfs).message).toContain('fuse.fusefat, fuse.fuseiso');
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
