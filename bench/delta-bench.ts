/**
 * `npm run bench:delta [-- SIZE]`: the content-defined delta (docs/FORMAT.md 4.6) at a real size (default 1G),
 * through the real CLI. Release 1 goes whole and is imported; the receipt goes back out; release 2 differs from it
 * in 5% of its blocks changed in place (`--block 64K`, qcow2's cluster, or 4K), spread evenly. Prints the bytes on
 * the media against the image, the export and import times of the delta beside those of the whole release and `cp`
 * of the image, the import's peak RSS, and checks the rebuilt image's sha256. Informational, like `npm run bench`.
 */
import { createHash, randomFillSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseByteSize } from '../sneakernet/volume-plan.js';
import { cliArgs, cold, dropFile, ecluse, makeImage, row, run, type Run } from './common.js';

/** Rewrites `share` of the `block`-sized blocks of `file` in place, spread evenly. */
async function changeBlocks(file: string, bytes: number, block: number, share: number): Promise<number> {
  const fd = await fs.promises.open(file, 'r+');
  const buf = Buffer.alloc(block);
  const blocks = Math.floor(bytes / block);
  let changed = 0;
  for (let k = 0; Math.floor(k / share) < blocks; k++) {
    randomFillSync(buf);
    await fd.write(buf, 0, block, Math.floor(k / share) * block);
    changed++;
  }
  await fd.close();
  return changed;
}

function mediaBytes(dir: string): number {
  return fs
    .readdirSync(dir, { recursive: true })
    .map((f) => path.join(dir, String(f)))
    .filter((f) => f.endsWith('.tar'))
    .reduce((n, f) => n + fs.statSync(f).size, 0);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const sizeArg = args.find((a, i) => !a.startsWith('-') && args[i - 1] !== '--block') ?? '1G';
  const at = args.indexOf('--block');
  const block = parseByteSize((at >= 0 ? args[at + 1] : undefined) ?? '64K');
  const bytes = parseByteSize(sizeArg);
  const root = await fs.promises.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'ecluse-delta-bench-'));
  const rusage = path.join(root, 'rusage.json');
  try {
    console.log(`écluse delta bench: ${sizeArg} (${bytes} bytes), 5% of ${block}-byte blocks changed, in ${root}`);
    const v1 = path.join(root, 'v1.raw');
    const v2 = path.join(root, 'v2.raw');
    await makeImage(v1, bytes);
    await fs.promises.copyFile(v1, v2);
    const changed = await changeBlocks(v2, bytes, block, 0.05);
    const out = path.join(root, 'outside');
    const inside = path.join(root, 'inside');
    const keys = path.join(root, 'keys');
    await run(process.execPath, cliArgs(['keys', 'init', '--out', keys, '--signers', 'alice', '--no-passphrase']));
    const signer = path.join(keys, 'signers/alice');
    await ecluse(['site', 'init', '--trust', path.join(keys, 'trust'), '--site', 'bench'], inside, rusage);
    const add = (file: string, version: string) =>
      ecluse(['relay', 'add', file, '--name', 'bench', '--version', version, '--disk-format', 'raw'], out, rusage);
    const exportTo = async (media: string) => {
      fs.mkdirSync(media, { recursive: true }); // export --to wants a mounted medium: a folder that exists
      await cold();
      return ecluse(
        ['export', '--to', media, '--site', 'bench', '--signer', signer, '--media-size', '4G'],
        out,
        rusage,
      );
    };
    const importFrom = async (media: string) => {
      await cold();
      return ecluse(['import', media], inside, rusage);
    };

    await add(v1, '1');
    const whole = { export: await exportTo(path.join(root, 'm1')), import: await importFrom(path.join(root, 'm1')) };
    const pub = path.join(root, 'receipt.pub');
    await ecluse(['receipt', 'key', '--out', pub], inside, rusage);
    await ecluse(['relay', 'receipt', 'trust', pub, '--site', 'bench'], out, rusage);
    await ecluse(['receipt', 'export', '--to', path.join(root, 'back')], inside, rusage);
    await ecluse(['relay', 'receipt', 'import', path.join(root, 'back')], out, rusage);
    await add(v2, '2');
    const delta = { export: await exportTo(path.join(root, 'm2')), import: await importFrom(path.join(root, 'm2')) };
    const carried = mediaBytes(path.join(root, 'm2'));

    // The rebuilt image must be release 2, byte for byte (compared by sha256 with the tool everyone trusts).
    const sha256 = async (f: string) => {
      const h = createHash('sha256');
      for await (const d of fs.createReadStream(f, { highWaterMark: 1024 * 1024 })) h.update(d as Buffer);
      return h.digest('hex');
    };
    const stored = fs
      .readdirSync(path.join(inside, 'store', 'images'))
      .map((f) => path.join(inside, 'store', 'images', f));
    const sums = [await sha256(v2), ...(await Promise.all(stored.map(sha256)))];
    const rebuilt = sums.slice(1).includes(sums[0] as string);

    await cold();
    const copy = path.join(root, 'cp.copy');
    const cp: Run = await run('cp', [v2, copy]);
    await dropFile(copy);

    console.log(`\n${'step'.padEnd(26)} ${'wall'.padStart(10)} ${'peak RSS'.padStart(10)}`);
    console.log(row('cp of the image', cp));
    console.log(row('export, whole', whole.export, cp));
    console.log(row('import, whole', whole.import, cp));
    console.log(row('export, delta', delta.export, cp));
    console.log(row('import, delta', delta.import, cp));
    console.log(
      `\nchanged blocks       = ${changed} of ${Math.floor(bytes / block)} (${((changed * block * 100) / bytes).toFixed(1)}% of the bytes)`,
    );
    console.log(`on the media         = ${carried} bytes = ${((carried * 100) / bytes).toFixed(1)}% of the image`);
    console.log(`rebuilt inside       = ${rebuilt ? 'bit-identical (sha256)' : 'DIFFERENT'}`);
    if (!rebuilt) process.exitCode = 1;
  } finally {
    if (!process.argv.includes('--keep')) await fs.promises.rm(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
