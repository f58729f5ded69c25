/**
 * Progress of long copies: a bar on stderr when it is a terminal (cli-progress), nothing otherwise (scripts and
 * journals get the final line only). Never on stdout, which belongs to the result.
 */
import { createRequire } from 'node:module';
import type cliProgressModule from 'cli-progress';
import { formatBytes } from './output.js';

export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function progressBar(label: string, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  // Loaded only when a bar is shown: a script or a journal never pays for it.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof cliProgressModule;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {done} of {all} | {speed} | eta {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  const started = Date.now();
  let begun = false;
  return {
    update(done, total) {
      const secs = Math.max((Date.now() - started) / 1000, 0.001);
      const payload = { done: formatBytes(done), all: formatBytes(total), speed: `${formatBytes(done / secs)}/s` };
      if (!begun) {
        bar.start(total, done, payload);
        begun = true;
      } else bar.update(done, payload);
    },
    stop() {
      if (begun) bar.stop();
    },
  };
}
