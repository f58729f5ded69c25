/** What the benchmarks share: timing a command with its peak RSS, the CLI, generated images, a cold page cache. */
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IMPORT_NODE_FLAGS } from '../cli/node-flags.js';

export const CLI = fileURLToPath(new URL('../ecluse/main.js', import.meta.url));
/**
 * `node` arguments that run the CLI with `args` as the station runs it: `daemon`, `import` and `verify` with the
 * flags the import daemon's unit gives node (cli/node-flags.ts), any other command with Node's defaults, as `ecluse`
 * runs.
 */
export function cliArgs(args: readonly string[]): string[] {
  const command = args.find((a, i) => !a.startsWith('-') && args[i - 1] !== '--home');
  const importer = command === 'daemon' || command === 'import' || command === 'verify';
  return [...(importer ? IMPORT_NODE_FLAGS : []), CLI, ...args];
}

export interface Run {
  seconds: number;
  maxRssMiB: number | null;
}

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, rusage?: string): Promise<Run> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim()}`));
      let maxRssMiB: number | null = null;
      if (rusage && fs.existsSync(rusage)) {
        maxRssMiB = (JSON.parse(fs.readFileSync(rusage, 'utf8')) as { maxRssKiB: number }).maxRssKiB / 1024;
      }
      resolve({ seconds, maxRssMiB });
    });
  });
}

export function ecluse(args: string[], home: string, rusage: string): Promise<Run> {
  return run(
    process.execPath,
    cliArgs(['--home', home, ...args]),
    // site init run as root pins the self-update anchors (FORMAT 4.10): beside the home, not in the machine's /etc.
    { ECLUSE_RUSAGE_FILE: rusage, ECLUSE_PASSPHRASE: 'bench', ECLUSE_SELF_UPDATE_ANCHORS: `${home}.self-update` },
    rusage,
  );
}

export async function makeImage(file: string, bytes: number): Promise<void> {
  const fd = await fs.promises.open(file, 'w');
  const chunk = Buffer.alloc(8 * 1024 * 1024);
  for (let done = 0; done < bytes;) {
    const n = Math.min(chunk.length, bytes - done);
    randomFillSync(chunk, 0, n);
    await fd.write(chunk, 0, n);
    done += n;
  }
  await fd.close();
}

export async function dropFile(file: string): Promise<void> {
  await fs.promises.rm(file, { force: true });
}

export const row = (label: string, r: Run, base?: Run) =>
  `${label.padEnd(26)} ${r.seconds.toFixed(2).padStart(8)} s ${(r.maxRssMiB === null ? '-' : `${r.maxRssMiB.toFixed(0)} MiB`).padStart(10)}` +
  (base ? `   ×${(r.seconds / base.seconds).toFixed(2)} of cp` : '');

/** Flushes dirty pages and, as root, empties the page cache, so each timed run reads from the disk like media. */
export async function cold(): Promise<boolean> {
  await run('sync', []);
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

export function median(runs: Run[]): Run {
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const m = sorted[Math.floor(sorted.length / 2)] as Run;
  const rss = runs.map((r) => r.maxRssMiB).filter((x): x is number => x !== null);
  return { seconds: m.seconds, maxRssMiB: rss.length ? Math.max(...rss) : null };
}
