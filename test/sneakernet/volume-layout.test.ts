/**
 * The canonical layout check (sneakernet/volume-layout.ts, docs/FORMAT.md 4.11), which stands in for a volume's
 * SHA-256 when chunk lists prove its data: on volumes the real writer made (sneakernet/volume-writer.ts), it gives the
 * signed digest without hashing; any changed byte of a header, of the padding or of the end of archive is found (and
 * named), and then the file is hashed so the reader decides as step 7i always did; a changed data byte is not its to
 * find (the chunks find it), and it says so by passing.
 */
import fs from 'node:fs';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalHeader, CanonicalLayoutCheck, coveredByChunks } from '../../sneakernet/volume-layout.js';
import { planVolumes } from '../../sneakernet/volume-plan.js';
import { readVolume } from '../../sneakernet/volume-reader.js';
import { drain, randomBytes, refusal, rmDir, sha256, tmpDir, writeBundle, type WrittenBundle } from './fixtures.js';

const CREATED = '2025-01-02T03:04:05Z';
let dir: string;
let b: WrittenBundle;

beforeAll(async () => {
  dir = await tmpDir('ecluse-layout-');
  const data = [randomBytes(70_000), randomBytes(0), randomBytes(1), randomBytes(512), randomBytes(1500)];
  b = await writeBundle(dir, data, 64 * 1024, planVolumes);
});
afterAll(() => rmDir(dir));

/** Feeds `bytes` in pieces of 1 to 4099 bytes (headers and padding cut anywhere) and returns what hex() gives. */
async function check(v: number, bytes: Buffer): Promise<{ hex: string; found: string | null }> {
  const file = `${dir}/fed-${v}.tar`;
  fs.writeFileSync(file, bytes);
  const c = new CanonicalLayoutCheck(b.volumes[v] as WrittenBundle['volumes'][number], CREATED, file);
  let n = 1;
  for (let at = 0; at < bytes.length; at += n) {
    n = 1 + ((n * 7919) % 4099);
    c.update(bytes.subarray(at, at + n));
  }
  const found = c.firstNonCanonical;
  return { hex: await c.hex(), found: found ? `byte ${found.at} (in ${found.what})` : null };
}

const changed = (bytes: Buffer, at: number) => {
  const copy = Buffer.from(bytes);
  copy[at] = (copy[at] as number) ^ 0x01;
  return copy;
};

describe('canonical layout check (4.11, in place of 7i)', () => {
  it('on every volume the writer made, gives the signed sha256', async () => {
    expect(b.volumes.length).toBeGreaterThanOrEqual(2);
    for (const [v, vol] of b.volumes.entries()) {
      expect(await check(v, fs.readFileSync(b.files[v] as string))).toEqual({ hex: vol.sha256, found: null });
    }
  });

  it('finds any changed byte of the first header, of padding and of the end of archive, and gives the real hash', async () => {
    const bytes = fs.readFileSync(b.files[0] as string);
    for (let at = 0; at < 512; at++) {
      const damaged = changed(bytes, at);
      expect(await check(0, damaged)).toEqual({
        hex: sha256(damaged),
        found: `byte ${at} (in the tar header of entry 1)`,
      });
    }
    expect((await check(0, changed(bytes, bytes.length - 1))).found).toContain('end-of-archive');
    // The first entry that is not a multiple of 512 bytes, wherever the split put it: its first padding byte.
    const padded = b.volumes.flatMap((v, i) => {
      let at = 0;
      return v.entries.flatMap((e, j) => {
        const here = at + 512 + e.size;
        at += 512 + Math.ceil(e.size / 512) * 512;
        return e.size % 512 !== 0 ? [{ v: i, j, here }] : [];
      });
    })[0];
    if (!padded) throw new Error('no entry with padding');
    const other = fs.readFileSync(b.files[padded.v] as string);
    expect((await check(padded.v, changed(other, padded.here))).found).toContain(
      `in the padding after entry ${padded.j + 1}`,
    );
  });

  it('passes a changed data byte (the chunk lists prove data) and hashes a short file', async () => {
    const bytes = fs.readFileSync(b.files[0] as string);
    expect(await check(0, changed(bytes, 512 + 100))).toEqual({ hex: b.volumes[0]?.sha256, found: null });
    const short = bytes.subarray(0, bytes.length - 512);
    expect((await check(0, short)).hex).toBe(sha256(short));
  });

  it('writes sizes of 8 GiB and more in base-256 as tar-stream does', async () => {
    for (const size of [2 ** 33 - 1, 2 ** 33, 2 ** 40]) {
      const pack = tar.pack();
      pack.on('error', () => undefined);
      const entry = pack.entry({ name: 'blobs/sha256/x', size, mode: 0o644, mtime: new Date(CREATED), uid: 0, gid: 0 });
      entry.on('error', () => undefined);
      const first = await new Promise<Buffer>((resolve) => pack.once('data', (d: unknown) => resolve(d as Buffer)));
      entry.destroy();
      pack.destroy();
      expect(canonicalHeader('blobs/sha256/x', size, CREATED).equals(first.subarray(0, 512))).toBe(true);
    }
  });

  it('through the volume reader: a header changed with a valid checksum is E_DIGEST; signed as it is, it passes', async () => {
    const vol = b.volumes[0] as WrittenBundle['volumes'][number];
    const file = `${dir}/mtime-changed.tar`;
    const bytes = Buffer.from(fs.readFileSync(b.files[0] as string));
    bytes.write('1', 136 + 10, 'ascii'); // another mtime
    bytes.fill(0x20, 148, 156);
    let sum = 0;
    for (const x of bytes.subarray(0, 512)) sum += x;
    bytes.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
    fs.writeFileSync(file, bytes);
    const e = await refusal(
      readVolume(file, vol, drain, undefined, { layoutCheck: (x) => new CanonicalLayoutCheck(x, CREATED, file) }),
    );
    expect(e.code).toBe('E_DIGEST');
    expect(e.context).toMatchObject({ check: 'volume-digest', volume: vol.name });
    // A volume signed with that header (another writer's mtime) is the signed volume: read as 7i always read it.
    const signedAsIs = { ...vol, sha256: sha256(bytes) };
    await readVolume(file, signedAsIs, drain, undefined, {
      layoutCheck: (x) => new CanonicalLayoutCheck(x, CREATED, file),
    });
    const good = b.files[0] as string;
    await readVolume(good, vol, drain, undefined, { layoutCheck: (x) => new CanonicalLayoutCheck(x, CREATED, good) });
  });

  it('covers a volume only when every entry belongs to an artifact with a chunk list', () => {
    const vol = b.volumes[0] as WrittenBundle['volumes'][number];
    expect(coveredByChunks(vol, b.artifacts)).toBe(false);
    const listed = b.artifacts.map((a) => ({ ...a, chunks: { size: 65536, sha256: '0'.repeat(64) } }));
    expect(coveredByChunks(vol, listed)).toBe(true);
  });
});
