/**
 * Real media for the daemon tests: filesystem images made with mkfs.ext4, mkfs.vfat or xorriso, loop-mounted
 * ro,nosuid,nodev,noexec under a temporary media root while the real `ecluse daemon` (spawned CLI) runs, then
 * unmounted; and the daemon process itself, with its events. Needs root (mount, losetup).
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

/** Why `kind` media cannot be made and mounted here, or null. */
export function kindSkip(kind: Kind): string | null {
  if (!kernelFs.has(kind)) return `this kernel cannot mount ${kind} (not in /proc/filesystems)`;
  const tool = { ext4: 'mkfs.ext4', vfat: 'mkfs.vfat', iso9660: 'xorriso' }[kind];
  if (!which(tool)) return `${tool} is missing (run scripts/install-deps.sh)`;
  return null;
}

export const run = (cmd: string, args: string[]) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });

function dirBytes(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { recursive: true, withFileTypes: true }) as fs.Dirent[]) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}

/** A filesystem image holding the files of `from`. */
export function makeImage(kind: Kind, from: string, image: string, label: string): void {
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
    const mnt = tmpDir('ecluse-vfat-fill-');
    run('mount', ['-o', 'loop', image, mnt]);
    try {
      fs.cpSync(from, mnt, { recursive: true });
    } finally {
      run('umount', [mnt]);
      fs.rmSync(mnt, { recursive: true });
    }
  }
}

/** The media mounted by one test, unmounted (lazily, as a pulled stick) by `cleanup`. */
export class MediaBench {
  private readonly mounts: string[] = [];

  /** Makes an image of `folder` and mounts it at `<mediaRoot>/<name>` (ro,nosuid,nodev,noexec unless `options`). */
  insert(w: World, kind: Kind, folder: string, mediaRoot: string, name: string, options?: string): string {
    const image = w.path(`${name}.img`);
    if (!fs.existsSync(image)) makeImage(kind, folder, image, name);
    const mp = path.join(mediaRoot, name);
    fs.mkdirSync(mp, { recursive: true });
    const opts = options ?? `ro,nosuid,nodev,noexec${kind === 'ext4' ? ',noload' : ''}`;
    run('mount', ['-t', kind, '-o', `loop,${opts}`, image, mp]);
    this.mounts.push(mp);
    return mp;
  }

  /** Pulls the stick: a lazy unmount, so a file being read stays open while the mount is gone from the table. */
  pull(mp: string): void {
    run('umount', ['-l', mp]);
  }

  cleanup(): void {
    for (const m of this.mounts.splice(0)) {
      try {
        run('umount', ['-l', m]);
      } catch {
        // already gone
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
  constructor(readonly child: ChildProcess) {
    if (child.stdout) {
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          this.events.push(JSON.parse(line) as DaemonEvent);
        } catch {
          this.events.push({ event: 'unparsed', message: line });
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
