/**
 * Real media for the daemon tests: filesystem images made with mkfs.ext4, mkfs.vfat or xorriso, loop-mounted
 * ro,nosuid,nodev,noexec under a temporary media root while the real `ecluse daemon` (spawned CLI) runs, then
 * unmounted; and the daemon process itself, with its events. Needs root (mount, losetup).
 *
 * vfat and iso9660 are mounted by the kernel when /proc/filesystems has them, else by the FUSE drivers fusefat and
 * fuseiso (Debian packages of those names) on a read-only loop device, run in the foreground as children of the
 * test so that none outlives it. Without a kernel vfat, the vfat image is filled through fusefat's own write mode
 * (mtools would store lower-case 8.3 names as Windows does, with the NT lower-case flag, which fusefat ignores),
 * then checked with fsck.fat.
 */
import { execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { CLI, tmpDir, type World } from './world.js';

const MiB = 1024 * 1024;

export function kernelFilesystems(): Set<string> {
  try {
    return new Set(
      fs
        .readFileSync('/proc/filesystems', 'utf8')
        .split('\n')
        .map((l) => l.trim().split(/\s+/).pop() ?? ''),
    );
  } catch {
    return new Set();
  }
}

export function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const isRoot = process.getuid?.() === 0;
export const kernelFs = kernelFilesystems();

/** Why the real-media tests cannot run here, or null. */
export const mediaSkipReason: string | null = !isRoot
  ? 'they mount loop devices, which needs root (CI runs as root; run `sudo npx vitest run test/e2e/daemon.test.ts`)'
  : !which('mkfs.ext4') || !which('losetup')
    ? 'mkfs.ext4 or losetup is missing (run scripts/install-deps.sh)'
    : !kernelFs.has('ext4')
      ? 'this kernel cannot mount ext4'
      : null;

export type Kind = 'ext4' | 'vfat' | 'iso9660';

/** The FUSE driver that serves a kind when the kernel cannot (Debian packages fusefat and fuseiso). */
export const FUSE_DRIVER: Partial<Record<Kind, 'fusefat' | 'fuseiso'>> = { vfat: 'fusefat', iso9660: 'fuseiso' };

/** Why FUSE mounts of `kind` cannot be made here, or null. */
export function fuseSkip(kind: Kind): string | null {
  const driver = FUSE_DRIVER[kind];
  if (!driver) return `no FUSE driver is used for ${kind}`;
  if (!kernelFs.has('fuse') || !fs.existsSync('/dev/fuse')) return 'this kernel has no FUSE (/dev/fuse)';
  if (!which(driver)) return `${driver} is not installed (run scripts/install-deps.sh)`;
  return null;
}

export type MountMethod = 'kernel' | 'fuse';

/** How `kind` media are mounted here: by the kernel when it can, else by the FUSE driver; null when neither. */
export function mountMethod(kind: Kind): MountMethod | null {
  if (kernelFs.has(kind)) return 'kernel';
  return fuseSkip(kind) === null ? 'fuse' : null;
}

/** Why `kind` media cannot be made and mounted here, or null. */
export function kindSkip(kind: Kind): string | null {
  if (mountMethod(kind) === null) {
    return `this kernel cannot mount ${kind} (not in /proc/filesystems) and ${
      FUSE_DRIVER[kind] ? `the FUSE driver cannot either: ${fuseSkip(kind)}` : 'there is no FUSE driver for it'
    }`;
  }
  const tool = { ext4: 'mkfs.ext4', vfat: 'mkfs.vfat', iso9660: 'xorriso' }[kind];
  if (!which(tool)) return `${tool} is missing (run scripts/install-deps.sh)`;
  return null;
}

export const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}

/**
 * Runs a FUSE driver in the foreground (a child of the test) and waits until `mp` is in the mount table. Its output
 * goes to a file, never a pipe: the test writes to the mount synchronously and could not drain one (fusefat's write
 * mode is chatty), which would leave both waiting on each other.
 */
async function fuseMount(driver: string, args: string[], mp: string, logFile: string): Promise<ChildProcess> {
  const log = fs.openSync(logFile, 'w');
  const child = spawn(driver, args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  const end = Date.now() + 10_000;
  for (;;) {
    const table = fs.readFileSync('/proc/self/mountinfo', 'utf8');
    if (table.split('\n').some((l) => l.split(' ')[4] === mp)) return child;
    if (child.exitCode !== null || Date.now() > end) {
      child.kill();
      throw new Error(`${driver} ${args.join(' ')} did not mount: ${fs.readFileSync(logFile, 'utf8').trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits for a FUSE driver to exit once its mount is gone (killing it, by its pid, after `ms`). */
async function reap(child: ChildProcess, ms = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(timer);
}

function fillVfat(from: string, image: string): Promise<void> {
  if (kernelFs.has('vfat')) {
    const mnt = tmpDir('ecluse-vfat-fill-');
    run('mount', ['-o', 'loop', image, mnt]);
    try {
      fs.cpSync(from, mnt, { recursive: true });
    } finally {
      run('umount', [mnt]);
      fs.rmSync(mnt, { recursive: true });
    }
    return Promise.resolve();
  }
  return (async () => {
    const mnt = tmpDir('ecluse-vfat-fill-');
    const child = await fuseMount('fusefat', ['-f', '-o', 'rw+', image, mnt], mnt, `${image}.fill.log`);
    try {
      copyTree(from, mnt);
    } finally {
      run('umount', [mnt]);
      await reap(child);
      fs.rmSync(mnt, { recursive: true });
    }
    run('fsck.fat', ['-n', image]); // exits non-zero on any inconsistency
  })();
}

/** Folders and plain writes only: fusefat implements neither chmod nor copy_file_range, which cpSync uses. */
export function copyTree(from: string, to: string): void {
  for (const e of fs.readdirSync(from, { withFileTypes: true })) {
    const src = path.join(from, e.name);
    const dst = path.join(to, e.name);
    if (e.isDirectory()) {
      fs.mkdirSync(dst);
      copyTree(src, dst);
    } else {
      fs.writeFileSync(dst, fs.readFileSync(src));
    }
  }
}

/** A filesystem image holding the files of `from`. */
export async function makeImage(kind: Kind, from: string, image: string, label: string): Promise<void> {
  const bytes = fs.readdirSync(from, { recursive: true }).length * 4096 + dirBytes(from);
  const size = Math.max(16 * MiB, Math.ceil((bytes * 1.3) / MiB) * MiB + 8 * MiB);
  if (kind === 'ext4') {
    run('mkfs.ext4', ['-q', '-F', '-L', label, '-d', from, image, `${size / 1024}k`]);
  } else if (kind === 'iso9660') {
    run('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-V', label, '-o', image, from]);
  } else {
    fs.writeFileSync(image, '');
    fs.truncateSync(image, size);
    run('mkfs.vfat', ['-n', label.slice(0, 11).toUpperCase(), image]);
    await fillVfat(from, image);
  }
}

interface Mounted {
  mp: string;
  fuse: ChildProcess | null;
  loop: string | null;
}

/** The media mounted by one test, unmounted (lazily, as a pulled stick) by `cleanup`. */
export class MediaBench {
  private readonly mounts: Mounted[] = [];

  /**
   * Makes an image of `folder` (once) and mounts it at `<mediaRoot>/<name>`, ro,nosuid,nodev,noexec unless
   * `options`; by the kernel, or by the FUSE driver when the kernel cannot (or when `method` says so).
   */
  async insert(
    w: World,
    kind: Kind,
    folder: string,
    mediaRoot: string,
    name: string,
    o: { options?: string; method?: MountMethod; image?: string; fuseSubtype?: boolean } = {},
  ): Promise<string> {
    const image = o.image ?? w.path(`${name}.img`);
    if (!fs.existsSync(image)) await makeImage(kind, folder, image, name);
    const mp = path.join(mediaRoot, name);
    fs.mkdirSync(mp, { recursive: true });
    const opts = o.options ?? `ro,nosuid,nodev,noexec${kind === 'ext4' ? ',noload' : ''}`;
    const method = o.method ?? mountMethod(kind) ?? 'kernel';
    const driver = FUSE_DRIVER[kind];
    if (method === 'kernel' || !driver) {
      run('mount', ['-t', kind, '-o', `loop,${opts}`, image, mp]);
      this.mounts.push({ mp, fuse: null, loop: null });
      return mp;
    }
    // As a mount helper would: the driver reads the (read-only) block device, and names it as the mount source.
    const loop = run('losetup', ['-f', '--show', '-r', image]).toString().trim();
    // Without an explicit subtype a driver given fsname= may mount as plain `fuse` (fuseiso does).
    const subtype = o.fuseSubtype === false ? '' : `,subtype=${driver}`;
    const fuseOpts = `${opts},allow_other,fsname=${loop}${subtype}`;
    const args = driver === 'fusefat' ? ['-f', '-o', fuseOpts, loop, mp] : ['-n', loop, mp, '-f', '-o', fuseOpts];
    try {
      this.mounts.push({ mp, fuse: await fuseMount(driver, args, mp, `${image}.${name}.log`), loop });
    } catch (e) {
      run('losetup', ['-d', loop]);
      throw e;
    }
    return mp;
  }

  /** Pulls the stick: a lazy unmount, so a file being read stays open while the mount is gone from the table. */
  pull(mp: string): void {
    run('umount', ['-l', mp]);
  }

  async cleanup(): Promise<void> {
    for (const m of this.mounts.splice(0)) {
      try {
        run('umount', ['-l', m.mp]);
      } catch {
        // already gone
      }
      if (m.fuse) await reap(m.fuse);
      if (m.loop) {
        try {
          run('losetup', ['-d', m.loop]);
        } catch {
          // released with its last user
        }
      }
    }
  }
}

export interface DaemonEvent {
  event: string;
  code?: string | null;
  bundle?: string | null;
  message: string;
  [k: string]: unknown;
}

/** The spawned `ecluse daemon`; its events are the JSON lines on its stdout, unless a test feeds them itself. */
export class DaemonProcess {
  readonly events: DaemonEvent[] = [];
  stderr = '';
  private readonly exited: Promise<number | null>;
  private stopOn: ((e: DaemonEvent) => boolean) | null = null;
  constructor(readonly child: ChildProcess) {
    if (child.stdout) {
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        let e: DaemonEvent;
        try {
          e = JSON.parse(line) as DaemonEvent;
        } catch {
          e = { event: 'unparsed', message: line };
        }
        this.events.push(e);
        if (this.stopOn?.(e)) {
          this.stopOn = null;
          this.child.kill('SIGTERM');
        }
      });
    }
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }
  async waitFor(pred: (e: DaemonEvent) => boolean, what: string, timeoutMs = 30_000): Promise<DaemonEvent> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      if (Date.now() > end) {
        throw new Error(
          `timed out waiting for ${what}; events: ${JSON.stringify(this.events, null, 1)}\n${this.stderr}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  /** Sends SIGTERM the moment an event matching `pred` is read (not at the next poll of `waitFor`); its exit code. */
  async stopWhen(pred: (e: DaemonEvent) => boolean): Promise<number | null> {
    const seen = this.events.some(pred);
    if (seen) return this.stop();
    this.stopOn = pred;
    return this.exited;
  }
  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

export interface StartOptions {
  extra?: string[];
  env?: Record<string, string>;
  /** The daemon's stdout: a pipe read for JSON lines (default), or a file descriptor. */
  stdout?: number;
}

export function startDaemon(w: World, mediaRoot: string, o: StartOptions = {}): DaemonProcess {
  const stdio: StdioOptions = ['ignore', o.stdout ?? 'pipe', 'pipe'];
  const child = spawn(
    process.execPath,
    [CLI, '--home', w.inside, 'daemon', '--media-root', mediaRoot, '--poll-ms', '100', ...(o.extra ?? [])],
    { stdio, env: { ...process.env, NOTIFY_SOCKET: '', JOURNAL_STREAM: '', ...o.env } },
  );
  return new DaemonProcess(child);
}
