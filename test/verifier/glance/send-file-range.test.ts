/**
 * Image downloads larger than one read (verifier/glance/send-file-range.ts): the bytes through the real Glance server
 * for whole files and ranges across 1 MiB boundaries, many at once (pooled buffers never mix two images), a client
 * that reads slowly (backpressure) and one that goes away (the file is closed, the next download is whole), and a
 * file that ends before the promised length (the client sees a broken transfer, not a short body).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { glanceFixture, type GlanceFixture } from '../../helpers/glance-fixture.js';
import { idleBuffers, SEND_CHUNK, sendFileRange } from '../../../verifier/glance/send-file-range.js';

const MiB = 1024 * 1024;
let fx: GlanceFixture;
let big: string;
let other: string;
let huge: string;

beforeAll(async () => {
  fx = await glanceFixture([
    // Not a multiple of the read size: the last read is short.
    { name: 'big', data: crypto.randomBytes(3 * MiB + 12_345) },
    { name: 'other', data: crypto.randomBytes(2 * MiB + 7) },
    // More than the kernel's socket buffers hold for a client that stopped reading: writes wait in the server.
    { name: 'huge', data: crypto.randomBytes(24 * MiB + 3) },
  ]);
  big = fx.images[0]!.id;
  other = fx.images[1]!.id;
  huge = fx.images[2]!.id;
});
afterAll(async () => {
  await fx?.close();
});

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** One GET with node:http (no keep-alive agent), optionally pausing `pauseMs` after the first chunk. */
function download(id: string, headers: Record<string, string> = {}, pauseMs = 0): Promise<Got> {
  return new Promise((resolve, reject) => {
    http
      .get(`${fx.url}/v2/images/${id}/file`, { headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        let paused = pauseMs === 0;
        res.on('data', (c: Buffer) => {
          chunks.push(c);
          if (!paused) {
            paused = true;
            res.pause();
            setTimeout(() => res.resume(), pauseMs);
          }
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** How many descriptors of this process are open on `file` (the test server runs in this process). */
function openDescriptors(file: string): number {
  let n = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${fd}`) === file) n++;
    } catch {
      // closed while listing
    }
  }
  return n;
}

describe('downloads larger than one read', () => {
  it('sends every byte of a file of several reads, with the headers of a whole download', async () => {
    const r = await download(big);
    expect(r.status).toBe(200);
    expect(r.headers['content-length']).toBe(String(3 * MiB + 12_345));
    expect(r.headers['content-md5']).toBe(fx.images[0]!.checksum);
    expect(r.body.equals(fx.data.get(big)!)).toBe(true);
  });

  it('sends ranges that start, end and cross 1 MiB boundaries', async () => {
    const bytes = fx.data.get(big)!;
    const n = bytes.length;
    const cases: [string, number, number][] = [
      [`bytes=${SEND_CHUNK - 5}-${2 * SEND_CHUNK + 4}`, SEND_CHUNK - 5, 2 * SEND_CHUNK + 4],
      [`bytes=${SEND_CHUNK}-`, SEND_CHUNK, n - 1],
      [`bytes=0-${SEND_CHUNK - 1}`, 0, SEND_CHUNK - 1],
      [`bytes=${3 * SEND_CHUNK}-${3 * SEND_CHUNK}`, 3 * SEND_CHUNK, 3 * SEND_CHUNK],
      ['bytes=-3', n - 3, n - 1],
    ];
    for (const [range, a, b] of cases) {
      const r = await download(big, { Range: range });
      expect(r.status, range).toBe(206);
      expect(r.headers['content-range'], range).toBe(`bytes ${a}-${b}/${n}`);
      expect(r.headers['content-length'], range).toBe(String(b - a + 1));
      expect(r.body.equals(bytes.subarray(a, b + 1)), range).toBe(true);
    }
  });

  it('serves many downloads of two images at once, each with its own bytes, and keeps the buffer pool bounded', async () => {
    const ids = Array.from({ length: 24 }, (_, i) => (i % 2 === 0 ? big : other));
    const got = await Promise.all(ids.map((id, i) => download(id, i % 3 === 0 ? { Range: 'bytes=1000-' } : {})));
    got.forEach((r, i) => {
      const want = fx.data.get(ids[i]!)!;
      expect(r.body.equals(i % 3 === 0 ? want.subarray(1000) : want), `download ${i}`).toBe(true);
    });
    // Buffers came back for reuse, and no more than the pool keeps between bursts.
    expect(idleBuffers()).toBeGreaterThan(0);
    expect(idleBuffers()).toBeLessThanOrEqual(16);
    // A short range right after: only its own bytes, nothing left in a reused buffer from the image before.
    const r = await download(other, { Range: 'bytes=10-19' });
    expect(r.body.equals(fx.data.get(other)!.subarray(10, 20))).toBe(true);
  });

  it('sends every byte to clients that stop reading while others download (no buffer reused before it was sent)', async () => {
    const slow = [download(huge, {}, 400), download(huge, { Range: 'bytes=5-' }, 400)];
    await new Promise((r) => setTimeout(r, 100)); // the slow ones are paused, their writes pending
    const fast = await Promise.all(Array.from({ length: 6 }, () => download(other)));
    for (const r of fast) expect(r.body.equals(fx.data.get(other)!)).toBe(true);
    const [whole, ranged] = await Promise.all(slow);
    expect(whole!.body.equals(fx.data.get(huge)!)).toBe(true);
    expect(ranged!.body.equals(fx.data.get(huge)!.subarray(5))).toBe(true);
  });

  it('closes the file when the client goes away mid-download, and the next download is whole', async () => {
    const file = path.join(fx.imagesDir, fx.images[2]!.file!);
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${fx.url}/v2/images/${huge}/file`, { agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? undefined : reject(e)));
    });
    let open = openDescriptors(file);
    for (let i = 0; i < 50 && open > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      open = openDescriptors(file);
    }
    expect(open).toBe(0);
    const r = await download(big);
    expect(r.body.equals(fx.data.get(big)!)).toBe(true);
  });
});

describe('sendFileRange', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-send-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  /** A server sending bytes 0..length-1 of `file` to its one client; `outcome` is what sendFileRange resolved. */
  async function sendOnce(
    file: string,
    length: number,
    failAtRead = 0,
  ): Promise<{ url: string; outcome: Promise<unknown>; reads: () => number; close: () => Promise<void> }> {
    let reads = 0;
    let settle: (v: unknown) => void = () => undefined;
    const outcome = new Promise((resolve) => (settle = resolve));
    const server = http.createServer((_req, res) => {
      void (async () => {
        const fh = await fs.promises.open(file, 'r');
        // The real file, its reads counted.
        const counted = {
          read: (...args: Parameters<typeof fh.read>) => {
            reads++;
            if (reads === failAtRead)
              return Promise.reject(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
            return fh.read(...args);
          },
        } as unknown as fs.promises.FileHandle;
        res.setHeader('Content-Length', String(length));
        try {
          settle(await sendFileRange(counted, 0, length - 1, res));
        } catch (e) {
          settle(e);
        } finally {
          await fh.close();
        }
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    return {
      url: `http://127.0.0.1:${port}/`,
      outcome,
      reads: () => reads,
      close: () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
    };
  }

  it('breaks the transfer when the file ends before the promised length', async () => {
    const file = path.join(dir, 'short');
    fs.writeFileSync(file, crypto.randomBytes(100));
    const s = await sendOnce(file, 2 * MiB);
    try {
      const err = await new Promise<string>((resolve) => {
        http
          .get(s.url, { agent: false }, (res) => {
            res.on('data', () => undefined);
            res.on('end', () => resolve('complete'));
            res.on('aborted', () => resolve('aborted'));
            res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
          })
          .on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      expect(err).not.toBe('complete');
      expect(await s.outcome).toEqual({ kind: 'short', at: 100 });
    } finally {
      await s.close();
    }
  });

  it('stops reading when the client goes away', async () => {
    const file = fs.realpathSync(path.join(fx.imagesDir, fx.images[2]!.file!));
    const s = await sendOnce(file, fx.data.get(huge)!.length);
    try {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(s.url, { agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' ? undefined : reject(e)));
      });
      expect(await s.outcome).toEqual({ kind: 'closed' });
      // Far fewer reads than the file's 25: what the kernel's socket buffers held, then nothing more.
      expect(s.reads()).toBeLessThan(Math.ceil(fx.data.get(huge)!.length / SEND_CHUNK));
    } finally {
      await s.close();
    }
  });

  it('rejects with the read error and breaks the transfer when the disk fails mid-file', async () => {
    const file = fs.realpathSync(path.join(fx.imagesDir, fx.images[0]!.file!));
    // The third read fails: it was started ahead, while the second piece was being written.
    const s = await sendOnce(file, fx.data.get(big)!.length, 3);
    try {
      const got = await new Promise<string>((resolve) => {
        http
          .get(s.url, { agent: false }, (res) => {
            res.on('data', () => undefined);
            res.on('end', () => resolve('complete'));
            res.on('aborted', () => resolve('aborted'));
            res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
          })
          .on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
      expect(got).not.toBe('complete');
      expect(await s.outcome).toMatchObject({ code: 'EIO' });
      expect(s.reads()).toBe(3);
    } finally {
      await s.close();
    }
  });
});
