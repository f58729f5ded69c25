/**
 * The appliance under QEMU for the slow tests: boots the image of packaging/build-appliance.sh with software
 * emulation (TCG, `-cpu max`), no network device, an xHCI controller for sticks, QMP to hot-plug them and the guest
 * agent (qemu-guest-agent) to run commands inside. Sticks are disk images made here: an MBR partition table and a
 * vfat filesystem (mkfs.vfat --offset, files copied with mcopy), no loop device or kernel vfat needed on the host.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';

/** One JSON-lines connection (QMP or the guest agent). */
class JsonChannel {
  private readonly lines: string[] = [];
  private waiter: (() => void) | null = null;
  private constructor(private readonly sock: net.Socket) {
    readline.createInterface({ input: sock }).on('line', (l) => {
      if (l.trim() === '') return;
      this.lines.push(l);
      this.waiter?.();
    });
  }
  static async open(file: string, timeoutMs: number): Promise<JsonChannel> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        const sock = await new Promise<net.Socket>((resolve, reject) => {
          const s = net.connect(file, () => resolve(s));
          s.once('error', reject);
        });
        return new JsonChannel(sock);
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
  async next(timeoutMs: number): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      if (Date.now() > end) throw new Error('no answer in time');
      await new Promise<void>((r) => {
        this.waiter = r;
        setTimeout(r, 200);
      });
    }
    return JSON.parse(this.lines.shift() as string) as Record<string, unknown>;
  }
  send(cmd: string, args?: unknown): void {
    this.sock.write(`${JSON.stringify({ execute: cmd, ...(args ? { arguments: args } : {}) })}\n`);
  }
  /** Sends and returns the first answer that is not an event. */
  async call(cmd: string, args?: unknown, timeoutMs = 60_000): Promise<unknown> {
    this.send(cmd, args);
    for (;;) {
      const r = await this.next(timeoutMs);
      if ('event' in r) continue;
      if ('error' in r) throw new Error(`${cmd}: ${JSON.stringify(r.error)}`);
      return r.return;
    }
  }
  close(): void {
    this.sock.destroy();
  }
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class Vm {
  private qmp: JsonChannel | null = null;
  private qga: JsonChannel | null = null;
  readonly child: ChildProcess;
  private constructor(
    readonly dir: string,
    args: string[],
  ) {
    this.child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Boots `image` (a build-appliance folder) with its disk as a throwaway snapshot. */
  static boot(image: string, dir: string): Vm {
    return new Vm(dir, [
      '-accel',
      'tcg,thread=multi',
      '-cpu',
      'max',
      '-m',
      '1024',
      '-smp',
      '2',
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-nic',
      'none',
      '-no-reboot',
      '-kernel',
      path.join(image, 'vmlinuz'),
      '-initrd',
      path.join(image, 'initrd.img'),
      '-append',
      'root=/dev/vda rw console=ttyS0 panic=-1 quiet',
      '-drive',
      `file=${path.join(image, 'disk.img')},format=raw,if=virtio,snapshot=on`,
      '-device',
      'qemu-xhci,id=xhci',
      '-device',
      'virtio-serial',
      '-chardev',
      `socket,path=${path.join(dir, 'qga.sock')},server=on,wait=off,id=qga0`,
      '-device',
      'virtserialport,chardev=qga0,name=org.qemu.guest_agent.0',
      '-qmp',
      `unix:${path.join(dir, 'qmp.sock')},server=on,wait=off`,
      '-serial',
      `file:${path.join(dir, 'console.log')}`,
    ]);
  }

  /** Waits until the guest agent answers (the system has booted far enough). */
  async ready(timeoutMs: number): Promise<void> {
    this.qmp = await JsonChannel.open(path.join(this.dir, 'qmp.sock'), 30_000);
    await this.qmp.next(30_000); // greeting
    await this.qmp.call('qmp_capabilities');
    this.qga = await JsonChannel.open(path.join(this.dir, 'qga.sock'), 30_000);
    await this.sync(timeoutMs);
  }

  /** guest-sync: drops answers left over from an earlier call (a test that timed out) until the agent echoes us. */
  private async sync(timeoutMs = 60_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    const qga = this.qga;
    if (!qga) throw new Error('the guest agent is not connected');
    for (;;) {
      const id = Math.floor(Math.random() * 2 ** 30);
      qga.send('guest-sync', { id });
      try {
        for (;;) {
          const r = await qga.next(10_000);
          if (r.return === id) return;
        }
      } catch {
        if (Date.now() > end || this.child.exitCode !== null) {
          throw new Error(`the guest agent did not answer; console: ${this.console().slice(-2000)}`);
        }
      }
    }
  }

  console(): string {
    try {
      return fs.readFileSync(path.join(this.dir, 'console.log'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Runs a command in the guest (as root) and waits for it. */
  async exec(argv: string[], timeoutMs = 300_000): Promise<ExecResult> {
    if (!this.qga) throw new Error('the guest agent is not connected');
    await this.sync();
    const [cmd, ...arg] = argv;
    const { pid } = (await this.qga.call('guest-exec', { path: cmd, arg, 'capture-output': true })) as { pid: number };
    const end = Date.now() + timeoutMs;
    for (;;) {
      const st = (await this.qga.call('guest-exec-status', { pid })) as {
        exited: boolean;
        exitcode?: number;
        'out-data'?: string;
        'err-data'?: string;
      };
      if (st.exited) {
        return {
          code: st.exitcode ?? -1,
          stdout: Buffer.from(st['out-data'] ?? '', 'base64').toString('utf8'),
          stderr: Buffer.from(st['err-data'] ?? '', 'base64').toString('utf8'),
        };
      }
      if (Date.now() > end) throw new Error(`${argv.join(' ')} did not finish in the guest`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  sh(script: string, timeoutMs?: number): Promise<ExecResult> {
    return this.exec(['/bin/sh', '-c', script], timeoutMs);
  }

  /** Hot-plugs a stick image on the xHCI bus, read-only, with a USB serial. */
  async plug(id: string, image: string, serial: string): Promise<void> {
    await this.qmp?.call('blockdev-add', {
      driver: 'raw',
      'node-name': id,
      'read-only': true,
      file: { driver: 'file', filename: image, 'read-only': true },
    });
    await this.qmp?.call('device_add', {
      driver: 'usb-storage',
      bus: 'xhci.0',
      drive: id,
      id,
      serial,
      removable: true,
    });
  }

  /**
   * Pulls a stick (device_del, as a hand would: no unmount first), then frees its image once the guest has let the
   * device go (blockdev-del fails until then), so that the same id can be plugged again.
   */
  async unplug(id: string, timeoutMs = 60_000): Promise<void> {
    await this.qmp?.call('device_del', { id });
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.qmp?.call('blockdev-del', { 'node-name': id });
        return;
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  async stop(): Promise<void> {
    this.qga?.close();
    if (this.child.exitCode === null) {
      try {
        await this.qmp?.call('quit', undefined, 5000);
      } catch {
        // already going
      }
    }
    this.qmp?.close();
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const done = new Promise((r) => this.child.once('exit', r));
      setTimeout(() => this.child.kill('SIGKILL'), 10_000).unref();
      await done;
    }
  }
}

/** A stick image: MBR with one FAT partition from 1 MiB, vfat labelled `label`, holding the files of `from`. */
export function makeVfatStick(image: string, from: string, label: string, sizeMiB = 64): void {
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMiB * 1024 * 1024);
  const start = 2048;
  const count = sizeMiB * 2048 - start;
  const mbr = Buffer.alloc(512);
  mbr.writeUInt32LE(0x1234abcd, 440);
  const e = 446;
  mbr[e + 4] = 0x0c; // FAT32 LBA
  mbr.writeUInt32LE(start, e + 8);
  mbr.writeUInt32LE(count, e + 12);
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  const fd = fs.openSync(image, 'r+');
  fs.writeSync(fd, mbr, 0, 512, 0);
  fs.closeSync(fd);
  execFileSync('mkfs.vfat', ['--offset', String(start), '-n', label, image, String(count / 2)], { stdio: 'ignore' });
  for (const name of fs.readdirSync(from)) {
    execFileSync('mcopy', ['-s', '-i', `${image}@@1M`, path.join(from, name), '::/'], { stdio: 'ignore' });
  }
}

/** A whole-disk ext4 stick (no partition table) holding the files of `from` (mkfs.ext4 -d: no mount needed). */
export function makeExt4Stick(image: string, from: string, label: string, sizeMiB = 64): void {
  execFileSync('mkfs.ext4', ['-q', '-F', '-L', label, '-d', from, image, `${sizeMiB}M`], { stdio: 'ignore' });
}

/** A stick written from an ISO 9660 image (as `dd` of an ISO onto a stick): Rock Ridge and Joliet names. */
export function makeIsoStick(image: string, from: string, label: string): void {
  execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-V', label, '-o', image, from], {
    stdio: 'ignore',
  });
}

/**
 * A whole-disk exFAT stick holding the files of `from`: mkfs.exfat, then the files copied through exfat-fuse on
 * the host (no kernel exfat needed). exfat-fuse run as root wants a block device: the image goes through a loop
 * device for the copy (root and /dev/fuse needed).
 */
export function makeExfatStick(image: string, from: string, label: string, sizeMiB = 64): void {
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMiB * 1024 * 1024);
  execFileSync('mkfs.exfat', ['-L', label, image], { stdio: 'ignore' });
  const mnt = fs.mkdtempSync(path.join(path.dirname(image), '.exfat-'));
  const loop = execFileSync('losetup', ['--find', '--show', image], { encoding: 'utf8' }).trim();
  try {
    execFileSync('mount.exfat-fuse', [loop, mnt], { stdio: 'ignore' });
    try {
      fs.cpSync(from, mnt, { recursive: true });
    } finally {
      execFileSync('umount', [mnt], { stdio: 'ignore' });
    }
  } finally {
    execFileSync('losetup', ['--detach', loop], { stdio: 'ignore' });
    fs.rmdirSync(mnt);
  }
}

/** A stick with no filesystem at all (zeros): nothing écluse accepts, so it is never mounted. */
export function makeBlankStick(image: string, sizeMiB = 16): void {
  fs.writeFileSync(image, '');
  fs.truncateSync(image, sizeMiB * 1024 * 1024);
}
