/**
 * Media at a removable stick's pace for the benchmarks: the bundle copied onto an ext4 image, loop-mounted read-only
 * (as the import station mounts media) and read through a block-I/O cgroup that caps the loop device's read rate.
 * `cp` and `ecluse import` then read the same bytes at the same pace. Needs root and a cgroup with a block-I/O
 * controller (v2 `io.max`, or v1 `blkio.throttle.read_bps_device`); otherwise `prepareSlowMedia` says why not.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface SlowMedia {
  /** Where the throttled copy of the media is mounted (read-only). */
  mountPoint: string;
  /** `cmd args` wrapped so that it runs inside the throttling cgroup. */
  wrap(cmd: string, args: string[]): { cmd: string; args: string[] };
  /** Mounts the same throttled device again at `dir` (a daemon's media root), as the station mounts a stick. */
  mountAt(dir: string): void;
  unmount(dir: string): void;
  cleanup(): void;
}

const sh = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();

/** A cgroup throttling reads of block device `majMin` to `bytesPerSecond`, or the reason there is none. */
function throttlingCgroup(name: string, majMin: string, bytesPerSecond: number): string {
  const v2 = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'].find((root) => {
    try {
      return fs.readFileSync(path.join(root, 'cgroup.controllers'), 'utf8').split(/\s+/).includes('io');
    } catch {
      return false;
    }
  });
  if (v2) {
    fs.writeFileSync(path.join(v2, 'cgroup.subtree_control'), '+io');
    const dir = path.join(v2, name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'io.max'), `${majMin} rbps=${bytesPerSecond}`);
    return dir;
  }
  const v1 = '/sys/fs/cgroup/blkio';
  if (!fs.existsSync(path.join(v1, 'blkio.throttle.read_bps_device'))) {
    throw new Error('no block-I/O cgroup controller (neither cgroup v2 io nor v1 blkio) to throttle reads with');
  }
  const dir = path.join(v1, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'blkio.throttle.read_bps_device'), `${majMin} ${bytesPerSecond}`);
  return dir;
}

/** Copies `mediaDir` onto a throttled read-only loop mount under `workDir`; throws an Error saying why it cannot. */
export function prepareSlowMedia(mediaDir: string, workDir: string, bytesPerSecond: number): SlowMedia {
  if (process.getuid?.() !== 0) throw new Error('needs root (loop devices, mounts and cgroups)');
  const image = path.join(workDir, 'stick.img');
  const mountPoint = path.join(workDir, 'stick');
  fs.mkdirSync(mountPoint, { recursive: true });
  const bytes = Number(sh('du', ['-sb', mediaDir]).split(/\s/)[0]);
  fs.writeFileSync(image, '');
  fs.truncateSync(image, Math.ceil(bytes * 1.1) + 64 * 1024 * 1024);
  sh('mkfs.ext4', ['-q', '-F', image]);
  sh('mount', ['-o', 'loop', image, mountPoint]);
  try {
    sh('cp', ['-a', `${mediaDir}/.`, mountPoint]);
  } finally {
    sh('umount', [mountPoint]);
  }
  const loop = sh('losetup', ['-f', '--show', '-r', image]).trim();
  let cgroup: string | null = null;
  try {
    sh('mount', ['-o', 'ro,nosuid,nodev,noexec,noatime,noload', loop, mountPoint]);
    const majMin = sh('lsblk', ['-dno', 'MAJ:MIN', loop]).trim();
    cgroup = throttlingCgroup(`ecluse-bench-${process.pid}`, majMin, bytesPerSecond);
  } catch (e) {
    try {
      sh('umount', [mountPoint]);
    } catch {
      // not mounted
    }
    sh('losetup', ['-d', loop]);
    throw e;
  }
  const procs = path.join(cgroup, 'cgroup.procs');
  return {
    mountPoint,
    wrap: (cmd, args) => ({ cmd: 'sh', args: ['-c', `echo $$ > '${procs}' && exec "$@"`, 'sh', cmd, ...args] }),
    mountAt(dir) {
      sh('mount', ['-o', 'ro,nosuid,nodev,noexec,noatime,noload', loop, dir]);
    },
    unmount(dir) {
      sh('umount', [dir]);
    },
    cleanup() {
      sh('umount', [mountPoint]);
      sh('losetup', ['-d', loop]);
      fs.rmdirSync(cgroup);
      fs.rmSync(image, { force: true });
    },
  };
}
