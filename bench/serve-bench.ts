/**
 * The serving half of `npm run bench`: downloads from `ecluse serve` against `python3 -m http.server` of the
 * same file, 1 and 8 clients at once, whole and `Range`; then the catalog grown to 10,000 images and `GET /v2/images`
 * (first page, a deep page by marker) and `GET /v2/images/{id}` timed under 8 concurrent clients (p95), after a warm-up
 * of WARM_REQUESTS requests of each kind. Loopback only, bounded: every server is started here and stopped before
 * returning. The file is served warm (page cache) by both.
 * Each line also gives each server's CPU time per GiB sent: what a download costs whatever else the machine runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { cliArgs, run } from './common.js';

/**
 * The range's bytes again in 1 MiB `Range` requests on one keep-alive connection, beside python's http.server sending
 * a 1 MiB file as many times (a connection each: HTTP/1.0): what a client fetching in pieces pays per request.
 */
export interface Pieces {
  requests: number;
  /** MiB/s. */
  ecluse: number;
  python: number;
  /** The server's CPU time per request (ms), data included; null where /proc is missing. */
  ecluseCpuMs: number | null;
  pythonCpuMs: number | null;
}

export interface Throughput {
  label: string;
  /** MiB/s over all clients. */
  ecluse: number;
  python: number;
  /** Each server's CPU time (user + system, /proc) per GiB it sent in these runs; null where /proc is missing. */
  ecluseCpuPerGiB: number | null;
  pythonCpuPerGiB: number | null;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

async function waitFor(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`the server for ${url} exited (${child.exitCode})`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = http.get(url, (res) => {
        res.resume();
        resolve(true);
      });
      req.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer from ${url}`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/**
 * Seconds for `clients` curl processes to fetch `url` at once (each `range`, if given), each checked to have
 * received `expect` bytes. curl writes to /dev/null through a 100 KiB receive buffer: measured at 0.1-0.2 s of CPU
 * per 512 MiB, it is not what caps either server.
 */
async function download(url: string, clients: number, expect: number, range?: string): Promise<number> {
  const args = ['-sf', '-o', '/dev/null', '-w', '%{size_download}', ...(range ? ['-H', `Range: ${range}`] : []), url];
  const started = process.hrtime.bigint();
  const got = await Promise.all(Array.from({ length: clients }, () => output('curl', args)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  for (const g of got) {
    if (Number(g) !== expect) throw new Error(`curl ${url}${range ? ` (${range})` : ''}: ${g} bytes, not ${expect}`);
  }
  return seconds;
}

/** The standard output of a command that must succeed. */
function output(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}`)),
    );
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

/**
 * Downloads of `imageId` (`file` in the store) through `ecluse serve` on `home` and through python's http.server,
 * which serves a folder of `work` holding a hard link to the same file (same inode, same cached pages) and, as the
 * baseline for a `Range`, a copy of exactly the bytes the range asks for (python's http.server has no Range).
 * python's http.server is not sendfile: `shutil.copyfileobj`, 64 KiB reads and sends, one thread per client.
 */
export async function serveBench(o: {
  home: string;
  imageId: string;
  file: string;
  work: string;
  reps: number;
}): Promise<{ lines: Throughput[]; pieces: Pieces }> {
  const size = fs.statSync(o.file).size;
  const half = Math.floor(size / 2);
  const served = path.join(o.work, 'served');
  fs.mkdirSync(served, { recursive: true });
  fs.linkSync(o.file, path.join(served, 'image'));
  // Written in 8 MiB pieces, as the import writes the store: a copy written in small pieces was measured 10-25% dearer
  // for python to send (smaller page-cache folios), which would flatter the Range ratio.
  await run('dd', [`if=${o.file}`, `of=${path.join(served, 'range')}`, 'bs=8M', `skip=${half}`, 'iflag=skip_bytes']);
  await run('dd', [`if=${o.file}`, `of=${path.join(served, 'piece')}`, 'bs=1M', 'count=1']);
  // The interpreter itself, not a wrapper (pyenv's shim is a shell script): its /proc entry is the server's CPU.
  const python3 = (await output('python3', ['-c', 'import sys; print(sys.executable)'])).trim();
  const [ep, pp] = [await freePort(), await freePort()];
  const ecluse = spawn(process.execPath, cliArgs(['--home', o.home, 'serve', '--listen', `127.0.0.1:${ep}`]), {
    stdio: 'ignore',
  });
  const python = spawn(python3, ['-m', 'http.server', String(pp), '--bind', '127.0.0.1'], {
    cwd: served,
    stdio: 'ignore',
  });
  try {
    const eUrl = `http://127.0.0.1:${ep}/v2/images/${o.imageId}/file`;
    const pUrl = `http://127.0.0.1:${pp}/image`;
    const pRangeUrl = `http://127.0.0.1:${pp}/range`;
    await Promise.all([waitFor(`http://127.0.0.1:${ep}/versions`, ecluse), waitFor(`http://127.0.0.1:${pp}/`, python)]);
    // Warm: both serve from the page cache, and each server has answered one download before the clock starts.
    await run('cat', [o.file, path.join(served, 'range'), path.join(served, 'piece')]);
    await download(eUrl, 1, size);
    await download(pUrl, 1, size);
    const out: Throughput[] = [];
    for (const [label, clients, range] of [
      ['1 client, whole', 1, undefined],
      ['8 clients, whole', 8, undefined],
      [`1 client, Range bytes=${half}- (${mibs(size - half)})`, 1, `bytes=${half}-`],
      [`8 clients, Range bytes=${half}- (${mibs(size - half)})`, 8, `bytes=${half}-`],
    ] as const) {
      const bytes = range ? size - half : size;
      const e: number[] = [];
      const p: number[] = [];
      let eCpu: number | null = 0;
      let pCpu: number | null = 0;
      for (let i = 0; i < o.reps; i++) {
        // Interleaved, so a burst of load on the shared machine hits both alike.
        const e0 = cpuTimeMs(ecluse.pid);
        e.push(await download(eUrl, clients, bytes, range));
        eCpu = addCpu(eCpu, e0, cpuTimeMs(ecluse.pid));
        const p0 = cpuTimeMs(python.pid);
        p.push(await download(range ? pRangeUrl : pUrl, clients, bytes));
        pCpu = addCpu(pCpu, p0, cpuTimeMs(python.pid));
      }
      const mib = (s: number) => (bytes * clients) / s / 1048576;
      const gib = (bytes * clients * o.reps) / 2 ** 30;
      out.push({
        label,
        ecluse: mib(median(e)),
        python: mib(median(p)),
        ecluseCpuPerGiB: eCpu === null ? null : eCpu / 1000 / gib,
        pythonCpuPerGiB: pCpu === null ? null : pCpu / 1000 / gib,
      });
    }
    // What a client that fetches in pieces (a resumable downloader) pays per request.
    const piece = 1024 * 1024;
    const requests = Math.ceil((size - half) / piece);
    const [et, pt]: [number[], number[]] = [[], []];
    let [eCpu, pCpu]: [number | null, number | null] = [0, 0];
    for (let i = 0; i < o.reps; i++) {
      const e0 = cpuTimeMs(ecluse.pid);
      et.push(await inPieces(eUrl, half, size - 1, piece));
      eCpu = addCpu(eCpu, e0, cpuTimeMs(ecluse.pid));
      const p0 = cpuTimeMs(python.pid);
      pt.push(await repeated(`http://127.0.0.1:${pp}/piece`, requests, piece));
      pCpu = addCpu(pCpu, p0, cpuTimeMs(python.pid));
    }
    const perRequest = (ms: number | null) => (ms === null ? null : ms / (requests * o.reps));
    const pieces: Pieces = {
      requests,
      ecluse: (requests * piece) / median(et) / 1048576,
      python: (requests * piece) / median(pt) / 1048576,
      ecluseCpuMs: perRequest(eCpu),
      pythonCpuMs: perRequest(pCpu),
    };
    return { lines: out, pieces };
  } finally {
    await Promise.all([stop(ecluse), stop(python)]);
    await fs.promises.rm(served, { recursive: true, force: true });
  }
}

/** Seconds for one curl to fetch bytes start..end of `url` in `piece`-byte `Range` requests over one connection. */
async function inPieces(url: string, start: number, end: number, piece: number): Promise<number> {
  const args: string[] = [];
  for (let a = start; a <= end; a += piece) {
    if (args.length > 0) args.push('--next');
    const b = Math.min(a + piece, end + 1) - 1;
    args.push('-sf', '-o', '/dev/null', '-w', '%{size_download}\n', '-r', `${a}-${b}`, url);
  }
  const started = process.hrtime.bigint();
  const got = (await output('curl', args)).trim().split('\n').map(Number);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const sum = got.reduce((x, y) => x + y, 0);
  if (sum !== end - start + 1) throw new Error(`curl ${url} in pieces: ${sum} bytes, not ${end - start + 1}`);
  return seconds;
}

/** Seconds for one curl to fetch `url` `times` times (expecting `bytes` each). */
async function repeated(url: string, times: number, bytes: number): Promise<number> {
  const args: string[] = [];
  for (let i = 0; i < times; i++) {
    if (args.length > 0) args.push('--next');
    args.push('-sf', '-o', '/dev/null', '-w', '%{size_download}\n', url);
  }
  const started = process.hrtime.bigint();
  const got = (await output('curl', args)).trim().split('\n').map(Number);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (got.some((n) => n !== bytes)) throw new Error(`curl ${url}: not ${bytes} bytes each time`);
  return seconds;
}

const mibs = (n: number) => `${(n / 1048576).toFixed(0)} MiB`;

function addCpu(sum: number | null, before: number | null, after: number | null): number | null {
  return sum === null || before === null || after === null ? null : sum + after - before;
}

export interface Latency {
  label: string;
  /** Why this kind is informational, not a target; undefined for a target. */
  informational?: string;
  p50: number;
  p95: number;
  requests: number;
  /**
   * The server's CPU time per request (user + system, from /proc), or null where /proc is missing: what a request
   * costs whatever else the machine runs, where p50/p95 also measure the wait for a core on a loaded machine.
   */
  cpuMs: number | null;
}

/** CPU time of a process so far (user + system, ms), from /proc/PID/stat; null when unreadable. */
function cpuTimeMs(pid: number | undefined): number | null {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15), in clock ticks
    return Number.isFinite(ticks) ? ticks * 10 : null; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

/**
 * Grows the catalog of `home` to `total` images (copies of `templateId`'s row, no data file: only the catalog is
 * measured), serves it, and times each request kind with `clients` concurrent keep-alive clients.
 */
/** Requests of each kind before any is timed (the server's warm-up). */
const WARM_REQUESTS = 200;

export async function catalogBench(o: {
  home: string;
  templateId: string;
  total: number;
  clients: number;
  perClient: number;
}): Promise<Latency[]> {
  const db = new Database(path.join(o.home, 'ecluse.sqlite'));
  const ids: string[] = [];
  try {
    const row = db.prepare('SELECT * FROM images WHERE id = ?').get(o.templateId) as Record<string, unknown>;
    const cols = Object.keys(row);
    const insert = db.prepare(
      `INSERT INTO images (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`,
    );
    db.transaction(() => {
      const have = (db.prepare('SELECT count(*) AS n FROM images').get() as { n: number }).n;
      for (let i = have; i < o.total; i++) {
        const id = randomUUID();
        const t = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
        insert.run({
          ...row,
          id,
          name: `bench-${String(i).padStart(5, '0')}`,
          file: null,
          created_at: t,
          updated_at: t,
        });
      }
    })();
    for (const r of db.prepare('SELECT id FROM images ORDER BY created_at DESC, id DESC').all() as Array<{
      id: string;
    }>)
      ids.push(r.id);
  } finally {
    db.close();
  }
  const port = await freePort();
  const server = spawn(process.execPath, cliArgs(['--home', o.home, 'serve', '--listen', `127.0.0.1:${port}`]), {
    stdio: 'ignore',
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.clients });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitFor(`${base}/versions`, server);
    const deep = ids[Math.floor(ids.length * 0.9)] as string;
    // The server keeps the body of a read it was asked before (verifier/glance/catalog-reads.ts), as clients ask the same
    // pages again; the last kind asks a page no request asked before, every time: what a read costs the server anew.
    let fresh = 0;
    const kinds: Array<[string, (i: number) => string, string?]> = [
      ['GET /v2/images (first page)', () => '/v2/images'],
      ['GET /v2/images?marker= (90% deep)', () => `/v2/images?marker=${deep}`],
      ['GET /v2/images/{id}', (i) => `/v2/images/${ids[(i * 7919) % ids.length]}`],
      [
        'GET /v2/images?marker= (a page never asked before)',
        () => `/v2/images?marker=${ids[(fresh++ * 7919) % ids.length]}`,
        'a read no body is kept for',
      ],
    ];
    // A station's server runs for days: it is timed warm. Every kind is asked WARM_REQUESTS times first, so V8 has
    // compiled the handlers (otherwise the kind timed first pays for the compiling: its p95 was twice the others').
    for (const [, pathOf] of kinds) {
      for (let i = 0; i < WARM_REQUESTS; i++) await timed(base, pathOf(i), agent);
    }
    const out: Latency[] = [];
    for (const [label, pathOf, informational] of kinds) {
      const times: number[] = [];
      const cpuBefore = cpuTimeMs(server.pid);
      let next = 0;
      const total = o.clients * o.perClient;
      await Promise.all(
        Array.from({ length: o.clients }, async () => {
          while (next < total) {
            const i = next++;
            times.push(await timed(base, pathOf(i), agent));
          }
        }),
      );
      times.sort((a, b) => a - b);
      const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] as number;
      const cpuAfter = cpuTimeMs(server.pid);
      const cpuMs = cpuBefore === null || cpuAfter === null ? null : (cpuAfter - cpuBefore) / times.length;
      out.push({ label, informational, p50: at(0.5), p95: at(0.95), requests: times.length, cpuMs });
    }
    return out;
  } finally {
    agent.destroy();
    await stop(server);
  }
}

/** Milliseconds for one GET (the whole body read); refuses anything but 200. */
function timed(base: string, p: string, agent: http.Agent): Promise<number> {
  const started = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${p}`, { agent }, (res) => {
        res.resume();
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`GET ${p}: HTTP ${res.statusCode}`));
          else resolve(Number(process.hrtime.bigint() - started) / 1e6);
        });
      })
      .on('error', reject);
  });
}
