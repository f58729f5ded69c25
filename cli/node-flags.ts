/**
 * The V8 flags `ecluse` runs with: its shebang (cli/main.ts, `#!/usr/bin/env -S node ...`) passes them, so the
 * installed command (/usr/bin/ecluse, and the units that start it) always has them; the benchmarks start the CLI with
 * them too, to measure what operators run.
 *
 * `--max-semi-space-size=2`: V8 grows its young generation up to 16 MiB a semi-space when a process allocates fast,
 * and an import allocates fast (a few small objects per MiB it moves) while its live heap stays ~14 MiB: the young
 * generation alone then held ~30 MiB of resident memory, and the old generation's garbage grew with the size of the
 * import (peak RSS 116 MiB at 1 GiB, 128 at 4 GiB). Capped at 2 MiB, the peak stays at ~103 MiB from 512 MiB to 3 GiB,
 * the same CPU time within noise (A/B runs, 512 MiB and 3 GiB imports and verifies, 2026-12-02). Node reads heap sizes
 * once, at start: `v8.setFlagsFromString` at run time does not change them, hence the shebang.
 */
export const NODE_FLAGS = ['--max-semi-space-size=2'] as const;
