/**
 * `npm run bench:relay [-- SIZE]` (default 512M; `BENCH_REPS`, default 3): the export station's two targets of issue 15
 * alone, `relay add` against the slowest of `cp`, `md5sum` and `sha512sum` of the image and `export` against `cp` of
 * the volume it wrote (the first export of the image, and the same image exported to a second site; both check it by
 * the chunk list relay add kept), each run with a cold page cache and the runs interleaved (baseline, command, baseline...), so a
 * machine whose load changes during the bench weighs on both sides alike. Beside each wall time it prints the CPU
 * seconds (user + system, every thread) of the run: on a shared machine the wall times of the same command vary by
 * several times and the CPU seconds much less, so the CPU ratio says where the time goes when the wall ratio is noise.
 * The median run of each kind is reported. Informational, like `npm run bench`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { parseByteSize } from '../sneakernet/volume-plan.js';
import { cliArgs, cold, makeImage, run } from './common.js';
import { Targets } from './targets.js';

interface Timed {
  seconds: number;
  cpu: number;
}

/** Runs `cmd` under `sh` and reads the children's CPU time from the shell's `times` (no GNU time needed). */
function timedTool(cmd: string, args: string[]): Promise<Timed> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', '"$@" >/dev/null && times', 'sh', cmd, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${err.trim()}`));
      // `times` prints the shell's user and system time, then its children's: "0m0.123s 0m0.045s".
      const children = out.trim().split('\n').at(-1) ?? '';
      const cpu = [...children.matchAll(/(\d+)m([\d.]+)s/g)].reduce((s, m) => s + Number(m[1]) * 60 + Number(m[2]), 0);
      resolve({ seconds, cpu });
    });
  });
}

/** The CLI, its CPU time from ECLUSE_RUSAGE_FILE (written by cli/main.ts at exit). */
async function timedEcluse(args: string[], home: string, rusage: string): Promise<Timed & { rssMiB: number }> {
  const r = await run(
    process.execPath,
    cliArgs(['--home', home, ...args]),
    { ECLUSE_RUSAGE_FILE: rusage, ECLUSE_PASSPHRASE: 'bench' },
    rusage,
  );
  const u = JSON.parse(fs.readFileSync(rusage, 'utf8')) as { userUs: number; systemUs: number; maxRssKiB: number };
  return { seconds: r.seconds, cpu: (u.userUs + u.systemUs) / 1e6, rssMiB: u.maxRssKiB / 1024 };
}

const median = <T extends Timed>(xs: T[]): T =>
  [...xs].sort((a, b) => a.seconds - b.seconds)[Math.floor(xs.length / 2)] as T;

const line = (label: string, t: Timed, base?: Timed) =>
  `${label.padEnd(28)} ${t.seconds.toFixed(2).padStart(7)} s wall ${t.cpu.toFixed(2).padStart(7)} s CPU` +
  (base ? `   wall ×${(t.seconds / base.seconds).toFixed(2)}, CPU ×${(t.cpu / base.cpu).toFixed(2)}` : '');

async function main(): Promise<void> {
  const sizeArg = process.argv.slice(2).find((a) => !a.startsWith('-')) ?? '512M';
  const bytes = parseByteSize(sizeArg);
  const reps = Math.max(1, Number(process.env.BENCH_REPS ?? 3));
  const root = await fs.promises.mkdtemp(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'ecluse-relay-bench-'));
  const image = path.join(root, 'image.raw');
  const copy = path.join(root, 'cp.copy');
  const rusage = path.join(root, 'rusage.json');
  try {
    console.log(
      `écluse relay bench: ${sizeArg} in ${root}, ${os.cpus().length} cores, node ${process.version}, ${reps} runs`,
    );
    await makeImage(image, bytes);
    await run(
      process.execPath,
      cliArgs(['keys', 'init', '--out', path.join(root, 'keys'), '--signers', 'alice', '--no-passphrase']),
    );
    const signer = path.join(root, 'keys/signers/alice');
    const runs = { cp: [] as Timed[], md5: [] as Timed[], sha512: [] as Timed[], cpVolume: [] as Timed[] };
    const adds: Array<Timed & { rssMiB: number }> = [];
    const exports: Array<Timed & { rssMiB: number }> = [];
    const secondExports: Array<Timed & { rssMiB: number }> = [];
    let dropped = true;
    for (let i = 0; i < reps; i++) {
      dropped = (await cold()) && dropped;
      runs.cp.push(await timedTool('cp', [image, copy]));
      await fs.promises.rm(copy, { force: true });
      await cold();
      runs.md5.push(await timedTool('md5sum', [image]));
      await cold();
      runs.sha512.push(await timedTool('sha512sum', [image]));
      const home = path.join(root, `outside-${i}`);
      await cold();
      adds.push(
        await timedEcluse(
          ['relay', 'add', image, '--name', 'bench', '--version', '1', '--disk-format', 'raw'],
          home,
          rusage,
        ),
      );
      /** `export` of the station's image to `site`, onto a new folder, timed from a cold page cache. */
      const exportFor = async (site: string, media: string) => {
        fs.mkdirSync(media);
        await cold();
        return timedEcluse(
          ['export', '--to', media, '--site', site, '--signer', signer, '--media-size', '4G'],
          home,
          rusage,
        );
      };
      const media = path.join(root, `media-${i}`);
      exports.push(await exportFor('bench', media));
      // The same image to a second site, checked by the same kept chunk list.
      const media2 = path.join(root, `media-${i}-second-site`);
      secondExports.push(await exportFor('bench-2', media2));
      await fs.promises.rm(media2, { recursive: true, force: true });
      const volume = (await fs.promises.readdir(media, { recursive: true })).find((f) => String(f).endsWith('.tar'));
      await cold();
      runs.cpVolume.push(await timedTool('cp', [path.join(media, String(volume)), copy]));
      await fs.promises.rm(copy, { force: true });
      await fs.promises.rm(home, { recursive: true, force: true });
      await fs.promises.rm(media, { recursive: true, force: true });
    }
    if (!dropped) console.log('note: not root, the page cache could not be emptied: every run reads warm data');
    const [cp, md5, sha512, cpVolume, add, exp, exp2] = [
      median(runs.cp),
      median(runs.md5),
      median(runs.sha512),
      median(runs.cpVolume),
      median(adds),
      median(exports),
      median(secondExports),
    ];
    const slowest = [cp, md5, sha512].reduce((a, b) => (b.seconds > a.seconds ? b : a));
    const slowestName = slowest === cp ? 'cp' : slowest === md5 ? 'md5sum' : 'sha512sum';
    console.log('');
    console.log(line('cp image (baseline)', cp));
    console.log(line('md5sum (baseline)', md5));
    console.log(line('sha512sum (baseline)', sha512));
    console.log(line(`relay add (${add.rssMiB.toFixed(0)} MiB RSS)`, add, slowest));
    console.log(line('cp volume (baseline)', cpVolume));
    console.log(line(`export (${exp.rssMiB.toFixed(0)} MiB RSS)`, exp, cpVolume));
    console.log(line(`export, second site (${exp2.rssMiB.toFixed(0)} MiB RSS)`, exp2, cpVolume));
    const all = (xs: Timed[]) => xs.map((x) => `${x.seconds.toFixed(2)}/${x.cpu.toFixed(2)}`).join(' ');
    console.log(
      `runs (wall/CPU s): add ${all(adds)} | ${slowestName} ${all(slowest === cp ? runs.cp : slowest === md5 ? runs.md5 : runs.sha512)} | export ${all(exports)} | second site ${all(secondExports)} | cp volume ${all(runs.cpVolume)}`,
    );
    const targets = new Targets(sizeArg);
    const asRun = (t: Timed) => ({ seconds: t.seconds, maxRssMiB: null });
    targets.ratio(`relay add / ${slowestName} (slowest of cp, md5sum, sha512sum)`, asRun(add), asRun(slowest), 1.3);
    targets.ratio('export / cp of the volume', asRun(exp), asRun(cpVolume), 1.5);
    targets.ratio('export to a second site / cp of the volume', asRun(exp2), asRun(cpVolume), 1.5);
    targets.info(
      'relay add CPU / (md5sum + sha512sum CPU)',
      add.cpu / (md5.cpu + sha512.cpu),
      'relay add computes both, and sha256, on two cores',
    );
    targets.info('export CPU / cp-of-the-volume CPU', exp.cpu / cpVolume.cpu, 'three SHA-256 passes, durable writes');
    targets.info(
      'second-site export CPU / cp-of-the-volume CPU',
      exp2.cpu / cpVolume.cpu,
      'two SHA-256 passes (the chunk list proved by the first)',
    );
    targets.print();
  } finally {
    if (!process.argv.includes('--keep')) await fs.promises.rm(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(`bench failed: ${(e as Error).message}`);
  process.exitCode = 1;
});
