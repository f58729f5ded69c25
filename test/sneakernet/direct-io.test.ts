/**
 * Direct I/O (sneakernet/direct-io.ts): aligned shared memory the media can be read into without the page cache, and
 * the fallback to the page cache where a file system refuses O_DIRECT (procfs here, iso9660 on a real disc).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alignedSharedMemory, DIRECT_ALIGN, openDirect, roundUp } from '../../sneakernet/direct-io.js';
import { ReadBuffers } from '../../sneakernet/read-buffers.js';
import { openMediaFile } from '../../sneakernet/media-file.js';
import { randomBytes, rmDir, tmpDir } from './fixtures.js';

describe('direct I/O', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tmpDir();
  });
  afterAll(async () => {
    await rmDir(dir);
  });

  it('reads a file into aligned shared memory with O_DIRECT, in aligned lengths', async () => {
    const { memory, aligned } = alignedSharedMemory(100_000);
    expect(aligned).toBe(true);
    expect(memory.byteLength).toBeGreaterThanOrEqual(roundUp(100_000));
    const bytes = randomBytes(3 * DIRECT_ALIGN + 5);
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, bytes);
    const { handle, direct } = await openDirect(file, fs.constants.O_RDONLY);
    try {
      expect(direct).toBe(true);
      const view = Buffer.from(memory, DIRECT_ALIGN, 4 * DIRECT_ALIGN);
      // Asked for an aligned length past the end: the file's bytes, no more.
      const { bytesRead } = await handle.read(view, 0, 4 * DIRECT_ALIGN, 0);
      expect(bytesRead).toBe(bytes.length);
      expect(view.subarray(0, bytesRead).equals(bytes)).toBe(true);
      // An unaligned length is what O_DIRECT refuses: the memory is aligned, the length decides.
      await expect(handle.read(view, 0, 100, 0)).rejects.toMatchObject({ code: 'EINVAL' });
    } finally {
      await handle.close();
    }
  });

  it('falls back to the page cache where the file system refuses O_DIRECT', async () => {
    const { handle, direct } = await openDirect('/proc/self/status', fs.constants.O_RDONLY);
    try {
      expect(direct).toBe(false);
      expect((await handle.readFile('utf8')).includes('Name:')).toBe(true);
    } finally {
      await handle.close();
    }
  });

  it('opens a volume on the media direct only when asked (the reader asks when its buffers are aligned)', async () => {
    const file = path.join(dir, 'volume');
    fs.writeFileSync(file, randomBytes(4096));
    for (const asked of [true, false]) {
      const { fd, size, direct } = await openMediaFile(file, 'volume 1', { direct: asked });
      await fd.close();
      expect([size, direct]).toEqual([4096, asked]);
    }
    expect(new ReadBuffers(2, 64 * 1024).aligned).toBe(true);
    // A buffer length that is not a multiple of the alignment cannot be read into directly.
    expect(new ReadBuffers(2, 1536).aligned).toBe(false);
  });
});
