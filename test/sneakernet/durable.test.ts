/**
 * sneakernet/durable.ts `Writeback`: an fdatasync is started in the background every `every` bytes, one at a time;
 * with `slowerThan`, only while the bytes arrive slower than that rate (a writer fed by a slow medium), never for a
 * writer whose bytes arrive faster (its final fsync does it all). Real file, real fdatasync, counted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { Writeback } from '../../sneakernet/durable.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-durable-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

/** Writes `pieces` of 64 KiB through a Writeback(every 128 KiB, slowerThan), pausing `pauseMs` before each. */
async function flushes(name: string, slowerThan: number | undefined, pauseMs = 0): Promise<number> {
  const spy = vi.spyOn(fs, 'fdatasync');
  spy.mockClear();
  const fd = fs.openSync(path.join(dir, name), 'w');
  try {
    const w = new Writeback(fd, 128 * 1024, slowerThan);
    const piece = Buffer.alloc(64 * 1024, 7);
    for (let i = 1; i <= 8; i++) {
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      fs.writeSync(fd, piece);
      w.wrote(i * piece.length);
      await w.settle(); // one at a time: let each finish, so every threshold crossed can start one
    }
    return spy.mock.calls.length;
  } finally {
    fs.closeSync(fd);
  }
}

describe('Writeback', () => {
  it('hands dirty pages over every `every` bytes', async () => {
    expect(await flushes('plain', undefined)).toBe(4);
  });

  it('with slowerThan: only while bytes arrive slower than the rate', async () => {
    // 64 KiB every 20 ms is ~3 MiB/s: slower than 100 MiB/s, flushed; faster than 1 byte per second, not.
    expect(await flushes('slow', 100 * 1024 * 1024, 20)).toBe(4);
    expect(await flushes('fast', 1)).toBe(0);
  });
});
