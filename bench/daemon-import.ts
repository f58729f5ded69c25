/**
 * An import as the import station makes it: by the running daemon (`ecluse daemon`, with the flags its unit gives
 * node), which notices a medium mounted under its media root and imports its bundle. Timed from the mount to the
 * daemon's status file saying the bundle was accepted, so the daemon's own start (node, loading the code: ~0.3 s that
 * a one-shot `ecluse import` pays before it reads the first byte) is not in it, as at a site where the daemon runs
 * for days; noticing the mount is (the mount table is read every 50 ms here, every 500 ms as shipped). The daemon runs
 * inside the throttling cgroup, so it reads the medium at the same pace as `cp`.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { cliArgs, cold, ecluse, type Run } from './common.js';
import type { SlowMedia } from './slow-media.js';

/** How often this daemon reads the mount table (`--poll-ms`): what noticing the medium may add to its import. */
export const DAEMON_POLL_MS = 50;

interface DaemonStatus {
  state?: string;
  last?: { outcome?: string; bundle?: string | null; message?: string } | null;
}

function readStatus(home: string): DaemonStatus | null {
  try {
    return JSON.parse(fs.readFileSync(path.join(home, 'daemon', 'status.json'), 'utf8')) as DaemonStatus;
  } catch {
    return null; // not written yet, or being replaced
  }
}

/** Polls `home`'s status file every 5 ms until `done` says so; throws after `timeoutMs`. */
async function until(home: string, what: string, done: (s: DaemonStatus) => boolean, timeoutMs: number) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const s = readStatus(home);
    if (s && done(s)) return s;
    if (Date.now() > end) throw new Error(`the daemon did not report ${what} within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Peak RSS of a running process (VmHWM), in MiB, or null where /proc has none. */
function peakRssMiB(pid: number | undefined): number | null {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** One import of the medium on `stick` by a daemon started for it in a fresh station home under `root`. */
export async function daemonImport(o: { stick: SlowMedia; root: string; trust: string; rusage: string; run: number }) {
  const home = path.join(o.root, `inside-daemon-${o.run}`);
  const mediaRoot = path.join(o.root, `media-root-${o.run}`);
  const mountPoint = path.join(mediaRoot, 'stick');
  await ecluse(['site', 'init', '--trust', o.trust, '--site', 'bench'], home, o.rusage);
  fs.mkdirSync(mountPoint, { recursive: true });
  const args = cliArgs([
    ...['--home', home, 'daemon', '--media-root', mediaRoot, '--no-usb', '--poll-ms', String(DAEMON_POLL_MS)],
    ...['--update-results', path.join(o.root, 'update-results'), '--update-spool', path.join(o.root, 'update-spool')],
  ]);
  const wrapped = o.stick.wrap(process.execPath, args);
  const daemon = spawn(wrapped.cmd, wrapped.args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  daemon.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => daemon.on('close', () => resolve()));
  let mounted = false;
  try {
    await until(home, 'that it is idle', (s) => s.state === 'idle', 60_000).catch((e: Error) => {
      throw new Error(`${e.message}: ${stderr.trim()}`);
    });
    await cold();
    const started = process.hrtime.bigint();
    o.stick.mountAt(mountPoint);
    mounted = true;
    const s = await until(home, 'the import', (st) => !!st.last?.outcome, 10 * 60_000);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (s.last?.outcome !== 'accepted') throw new Error(`the daemon's import was not accepted: ${s.last?.message}`);
    return { seconds, maxRssMiB: peakRssMiB(daemon.pid) } satisfies Run;
  } finally {
    daemon.kill('SIGTERM');
    await exited;
    if (mounted) o.stick.unmount(mountPoint);
    await fs.promises.rm(home, { recursive: true, force: true });
  }
}
