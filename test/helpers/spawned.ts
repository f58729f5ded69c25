/**
 * The real CLI run as a child the test can signal (SIGINT, SIGTERM, SIGKILL, SIGSTOP) while it works, and helpers to
 * wait for what it does to the import station's home (its staging folder appearing and filling).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CLI, PASSPHRASE, selfUpdateAnchorsFor, type RunResult } from './world.js';

export interface Spawned {
  child: ChildProcess;
  /** Resolves when the process has exited: its status (null when killed by a signal), output and signal. */
  done: Promise<RunResult & { signal: NodeJS.Signals | null }>;
}

export function spawnEcluse(args: string[], home: string): Spawned {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ECLUSE_PASSPHRASE: PASSPHRASE,
    ECLUSE_HOME: home,
    ECLUSE_SELF_UPDATE_ANCHORS: process.env.ECLUSE_SELF_UPDATE_ANCHORS ?? selfUpdateAnchorsFor(args, home),
  };
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<RunResult & { signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => {
      let json: unknown;
      try {
        json = JSON.parse(stdout.trim()) as unknown;
      } catch {
        json = undefined;
      }
      resolve({ code: code ?? -1, signal, stdout, stderr, json });
    });
  });
  return { child, done };
}

/** The import's staging folders under `<home>/store/staging`. */
export function stagingFolders(home: string): string[] {
  const dir = path.join(home, 'store', 'staging');
  return fs.existsSync(dir) ? fs.readdirSync(dir).map((n) => path.join(dir, n)) : [];
}

/** Bytes staged so far by the imports in progress. */
export function stagedBytes(home: string): number {
  let n = 0;
  for (const d of stagingFolders(home)) {
    for (const f of fs.existsSync(d) ? fs.readdirSync(d) : [])
      n += fs.statSync(path.join(d, f), { throwIfNoEntry: false })?.size ?? 0;
  }
  return n;
}

/** Polls until `pred` holds (or the process ends, or the time is up: then throws, naming `what`). */
export async function waitUntil(what: string, pred: () => boolean, s: Spawned, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (pred()) return;
    } catch {
      // a folder vanished between listing and stat: look again
    }
    if (s.child.exitCode !== null || s.child.signalCode !== null) {
      const r = await s.done;
      throw new Error(`the process ended (${r.code}) before ${what}: ${r.stderr}`);
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
