/**
 * `npm run bench [-- SIZE]`: exports and imports a generated image of SIZE (default 1G) through the real CLI and
 * prints wall time and peak RSS beside `cp` and `sha256sum` of the same bytes, measured in the same run, as ratios.
 * Targets (issue 2 / DESIGN.md): import wall time ≤ 1.5× cp, import peak RSS < 200 MiB. Informational: the exit
 * status is 0 unless something failed to run; the verdict is printed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseByteSize } from '../sneakernet/volume-plan.js';
import { CLI, cold, dropFile, ecluse, makeImage, median, row, run, type Run } from './common.js';

async function main(): Promise<void> {
  const sizeArg = process.argv.slice(2).find((a) => !a.startsWith('-')) ?? '1G';
  const bytes = parseByteSize(sizeArg);
  const reps = Math.max(1, Number(process.env.BENCH_REPS ?? 3));
  const root = await fs.promises.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'ecluse-bench-'));
  const image = path.join(root, 'image.raw');
  const rusage = path.join(root, 'rusage.json');
  const copy = path.join(root, 'cp.copy');
  try {
    console.log(
      `écluse bench: ${sizeArg} (${bytes} bytes) in ${root}, ${os.cpus().length} cores, node ${process.version}, median of ${reps}`,
    );
    await makeImage(image, bytes);
    await run(process.execPath, [
      CLI,
      'keys',
      'init',
      '--out',
      path.join(root, 'keys'),
      '--signers',
      'alice',
      '--no-passphrase',
    ]);
    const out = path.join(root, 'outside');
    const media = path.join(root, 'media');
    const signer = path.join(root, 'keys/signers/alice');
    const trust = path.join(root, 'keys/trust');
    await cold();
    const add = await ecluse(
      ['relay', 'add', image, '--name', 'bench', '--version', '1', '--disk-format', 'raw'],
      out,
      rusage,
    );
    await cold();
    const exp = await ecluse(
      ['export', '--to', media, '--site', 'bench', '--signer', signer, '--media-size', '4G'],
      out,
      rusage,
    );
    await fs.promises.rm(path.join(out, 'blobs'), { recursive: true, force: true });
    const volume = (await fs.promises.readdir(media, { recursive: true })).find((f) => String(f).endsWith('.tar'));
    const volumePath = path.join(media, String(volume));

    const runs: Record<'cp' | 'cpSync' | 'sha' | 'verify' | 'import', Run[]> = {
      cp: [],
      cpSync: [],
      sha: [],
      verify: [],
      import: [],
    };
    let dropped = false;
    for (let i = 0; i < reps; i++) {
      dropped = await cold();
      runs.cp.push(await run('cp', [volumePath, copy]));
      await dropFile(copy);
      await cold();
      const cs = await run('sh', ['-c', 'cp "$1" "$2" && sync "$2"', 'sh', volumePath, copy]);
      runs.cpSync.push(cs);
      await dropFile(copy);
      await cold();
      runs.sha.push(await run('sha256sum', [volumePath]));
      const inside = path.join(root, `inside-${i}`);
      await ecluse(['site', 'init', '--trust', trust, '--site', 'bench'], inside, rusage);
      await cold();
      runs.verify.push(await ecluse(['verify', media], inside, rusage));
      await cold();
      runs.import.push(await ecluse(['import', media], inside, rusage));
      await fs.promises.rm(inside, { recursive: true, force: true });
    }
    const [cp, cpSync, sha, verify, imp] = [runs.cp, runs.cpSync, runs.sha, runs.verify, runs.import].map(median) as [
      Run,
      Run,
      Run,
      Run,
      Run,
    ];
    if (!dropped) console.log('note: not root, the page cache could not be emptied: every run reads warm data');
    console.log(`\n${'step'.padEnd(26)} ${'wall'.padStart(10)} ${'peak RSS'.padStart(10)}`);
    console.log(row('cp (baseline)', cp));
    console.log(row('cp + sync (baseline)', cpSync));
    console.log(row('sha256sum (baseline)', sha));
    console.log(row('ecluse relay add (1 run)', add, cp));
    console.log(row('ecluse export (1 run)', exp, cp));
    console.log(row('ecluse verify', verify, cp));
    console.log(row('ecluse import', imp, cp));
    const ratio = imp.seconds / cp.seconds;
    console.log(`\nimport / cp          = ${ratio.toFixed(2)}  (target ≤ 1.50: ${ratio <= 1.5 ? 'met' : 'MISSED'})`);
    console.log(
      `import / (cp + sync) = ${(imp.seconds / cpSync.seconds).toFixed(2)}  (écluse fsyncs before it promotes; cp alone does not)`,
    );
    console.log(`import / sha256sum   = ${(imp.seconds / sha.seconds).toFixed(2)}`);
    const rss = imp.maxRssMiB ?? Infinity;
    console.log(`import peak RSS      = ${rss.toFixed(0)} MiB  (target < 200: ${rss < 200 ? 'met' : 'MISSED'})`);
    console.log(
      `runs (s): cp ${runs.cp.map((r) => r.seconds.toFixed(2)).join(' ')} | cp+sync ${runs.cpSync.map((r) => r.seconds.toFixed(2)).join(' ')} | import ${runs.import.map((r) => r.seconds.toFixed(2)).join(' ')}`,
    );
  } finally {
    if (!process.argv.includes('--keep')) await fs.promises.rm(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
