/**
 * The volume writer encodes ustar headers itself (sneakernet/tar-header.ts) instead of streaming through tar-stream:
 * a volume must come out byte for byte as before (a resend reproduces the volumes a signed statement names), so every
 * header and every whole volume is compared with what tar-stream writes for the same entries.
 */
import fs from 'node:fs';
import path from 'node:path';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeHeader, encodeHeader } from '../../sneakernet/tar-header.js';
import { entryPath } from '../../sneakernet/statement.js';
import { planVolumes } from '../../sneakernet/volume-plan.js';
import { writeVolume } from '../../sneakernet/volume-writer.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { makeArtifact, packTar, randomBytes, rmDir, tmpDir } from './fixtures.js';

const GiB = 1024 ** 3;
const HEX = 'ab'.repeat(32);

/** The header tar-stream pushes for an entry of `size` bytes (it is pushed before any data is written). */
async function tarStreamHeader(name: string, size: number, mtime: Date): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  pack.entry({ name, size, mode: 0o644, mtime, uid: 0, gid: 0, type: 'file' }, () => undefined);
  for (let i = 0; i < 100 && Buffer.concat(chunks).length < 512; i++) await new Promise((r) => setTimeout(r, 5));
  pack.destroy();
  return Buffer.concat(chunks).subarray(0, 512);
}

describe('encodeHeader', () => {
  const names = [entryPath(HEX, 1, 1), entryPath(HEX, 3, 12), 'a'];
  const sizes = [0, 1, 511, 512, 513, 1024 ** 2 + 7, 8 * GiB - 1, 8 * GiB, 8 * GiB + 513, 3000 * GiB];
  const times = [new Date(0), new Date('2025-01-02T03:04:05.678Z'), new Date(Date.UTC(2038, 0, 1))];

  it('is byte for byte the header tar-stream writes, for every size (base 256 from 8 GiB) and time, and decodes back', async () => {
    let compared = 0;
    for (const name of names) {
      for (const size of sizes) {
        for (const mtime of times) {
          const ours = encodeHeader({ name, size, mtime });
          expect(ours.length).toBe(512);
          expect(ours.equals(await tarStreamHeader(name, size, mtime)), `${name} ${size} ${mtime.toISOString()}`).toBe(
            true,
          );
          expect(decodeHeader(ours)).toEqual({ type: 'file', name, size, linkname: null });
          compared++;
        }
      }
    }
    expect(compared).toBe(names.length * sizes.length * times.length);
    // The base-256 size really is in use above 8 GiB (a regression to octal would overflow to 77777777777).
    expect(encodeHeader({ name: 'a', size: 8 * GiB, mtime: new Date(0) })[124]).toBe(0x80);
    expect(encodeHeader({ name: 'a', size: 8 * GiB - 1, mtime: new Date(0) }).toString('latin1', 124, 136)).toBe(
      '77777777777 ',
    );
  });

  it('refuses a name that a plain ustar header cannot hold (too long, not ASCII) as a bug, not a silent PAX header', () => {
    for (const name of ['x'.repeat(101), 'blobs/é', 'a b', '']) {
      let caught: unknown;
      try {
        encodeHeader({ name, size: 1, mtime: new Date(0) });
      } catch (e) {
        caught = e;
      }
      expect(caught, name).toBeInstanceOf(EcluseError);
      expect((caught as EcluseError).code).toBe('E_INTERNAL');
    }
  });
});

describe('writeVolume output', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tmpDir();
  });
  afterAll(() => rmDir(dir));

  it('is the archive tar-stream packs from the same entries: headers, data, padding, end of archive', async () => {
    const data = [1, 0, 511, 512, 513, 200_003, 3 * 1024 * 1024 + 5].map((n) => randomBytes(n));
    const files = data.map((d, i) => path.join(dir, `a-${i}.bin`));
    data.forEach((d, i) => fs.writeFileSync(files[i] as string, d));
    const artifacts = data.map((d, i) => makeArtifact(i, d));
    const mtime = new Date('2026-05-06T07:08:09Z');
    const volumes = planVolumes(artifacts, 2 * 1024 * 1024);
    expect(volumes.length).toBeGreaterThan(1);
    for (const v of volumes) {
      const target = path.join(dir, v.name);
      const written = await writeVolume(
        v,
        files.map((file) => ({ file })),
        target,
        mtime,
      );
      const expected = await packTar(
        v.entries.map((e) => ({
          header: { name: e.path, size: e.size, mtime, type: 'file' },
          data: (data[e.artifact] as Buffer).subarray(e.offset, e.offset + e.size),
        })),
      );
      const got = fs.readFileSync(target);
      expect(got.length).toBe(v.size);
      expect(got.equals(expected), v.name).toBe(true);
      expect(written.size).toBe(v.size);
    }
  });

  it('refuses a stored file shorter than the plan (E_DIGEST, check stored-artifact) and keeps no volume bytes counted', async () => {
    const d = randomBytes(3 * 1024 * 1024);
    const file = path.join(dir, 'short.bin');
    fs.writeFileSync(file, d);
    const [v] = planVolumes([makeArtifact(0, d)], 64 * 1024 * 1024);
    fs.truncateSync(file, 1024 * 1024 + 100);
    let caught: unknown;
    try {
      await writeVolume(v!, [{ file }], path.join(dir, 'short.tar'), new Date(0));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(EcluseError);
    expect((caught as EcluseError).code).toBe('E_DIGEST');
    expect((caught as EcluseError).context.check).toBe('stored-artifact');
    expect((caught as EcluseError).message).toContain(`${file} ends at byte ${1024 * 1024 + 100}`);
  });
});
