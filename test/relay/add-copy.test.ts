/**
 * relay add's copy into the store (relay/add.ts copyHashing): direct I/O both sides where the file system takes it,
 * reads ahead of the writing and hashing; the copy holds exactly the file's bytes and the three digests are theirs,
 * for every size around the chunk and block boundaries.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyHashing } from '../../relay/add.js';
import { md5, randomBytes, rmDir, sha256, sha512, tmpDir } from '../sneakernet/fixtures.js';

const MiB = 1024 * 1024;

describe('relay add copying a file into the store', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tmpDir();
  });
  afterAll(async () => {
    await rmDir(dir);
  });

  for (const size of [0, 1, 4095, 4096, MiB - 1, MiB, MiB + 1, 7 * MiB + 777]) {
    it(`copies ${size} bytes exactly, with their sha256, sha512 and md5`, async () => {
      const bytes = randomBytes(size);
      const from = path.join(dir, `in-${size}`);
      const to = path.join(dir, `out-${size}`);
      fs.writeFileSync(from, bytes);
      const seen: number[] = [];
      const { size: copied, digests } = await copyHashing(from, to, (n) => seen.push(n));
      expect(copied).toBe(size);
      expect(digests).toEqual({ sha256: sha256(bytes), sha512: sha512(bytes), md5: md5(bytes) });
      expect(fs.readFileSync(to).equals(bytes)).toBe(true);
      expect(fs.statSync(to).mode & 0o777).toBe(0o600);
      expect(seen.at(-1) ?? 0).toBe(size);
    });
  }

  it('refuses to replace a file already there', async () => {
    const from = path.join(dir, 'src');
    const to = path.join(dir, 'taken');
    fs.writeFileSync(from, randomBytes(10));
    fs.writeFileSync(to, 'x');
    await expect(copyHashing(from, to, () => undefined)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(fs.readFileSync(to, 'utf8')).toBe('x');
  });
});
