/**
 * The V8 flags the import station's importer runs with: `ecluse-daemon.service` sets them
 * (`Environment=NODE_OPTIONS=...`, checked equal by test/e2e/node-flags.test.ts), and the benchmarks time `import` and
 * `verify` with them, as the daemon runs. An operator gets the same bound from the shell with
 * `NODE_OPTIONS=--max-semi-space-size=2 ecluse import MEDIA`.
 *
 * `--max-semi-space-size=2`: V8 grows its young generation up to 16 MiB a semi-space when a process allocates fast,
 * and an import allocates fast (a few small objects per MiB it moves) while its live heap stays ~14 MiB: the young
 * generation alone then held ~30 MiB of resident memory, and the old generation's garbage grew with the size of the
 * import (peak RSS 116 MiB at 1 GiB, 128 at 4 GiB, `npm run bench`). Capped at 2 MiB: 102-103 MiB at 1 and at 4 GiB,
 * the same CPU time within noise. Not for every command: `ecluse serve` answers catalog pages (40 KB of JSON each)
 * with 30-40% more CPU under that cap (A/B, 8 clients: p95 14-18 ms without, 20-24 ms with), so the serve unit and
 * the CLI keep Node's defaults. Heap sizes are read once, at start (`v8.setFlagsFromString` later changes nothing):
 * hence flags given to node, not set by the command.
 */
export const IMPORT_NODE_FLAGS = ['--max-semi-space-size=2'] as const;
