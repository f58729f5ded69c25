/**
 * A bad chunk read from a volume checked by its layout only (docs/FORMAT.md 4.11): the volumes holding it are hashed
 * again, and the first that is not the signed one is refused as step 7i refuses it, the chunk named after it; when
 * each is the signed one (the signed list is what is wrong), or one cannot be read, the chunk's refusal stands.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EcluseError } from '../../sneakernet/errors.js';
import type { Volume } from '../../sneakernet/statement.js';
import { refusalNamingTheVolume, volumeFiles } from '../../verifier/damaged-volume.js';

let dir: string;
beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-damaged-'))));
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** Two volumes on disk, each as signed; returns them as the statement lists them. */
function volumes(): Volume[] {
  return ['vol-0001.tar', 'vol-0002.tar'].map((name, i) => {
    const bytes = Buffer.alloc(3 * 1024, i + 1);
    fs.writeFileSync(path.join(dir, name), bytes);
    return { name, size: bytes.length, sha256: sha256(bytes), entries: [] };
  });
}

const badChunk = (volume: string) =>
  new EcluseError(
    'E_DIGEST',
    'img 1.0: chunk 2 of 3 (bytes 4–8) does not match the chunk list in the signed statement',
    {
      check: 'artifact-chunk',
      artifact: 'img@1.0',
      chunk: 1,
      badChunk: `img 1.0: chunk 2 of 3 (bytes 4–8, read from ${volume.split(',').join(' and ')})`,
      bytes: '4-8',
      volume,
    },
  );

function damage(name: string): void {
  const file = path.join(dir, name);
  const bytes = fs.readFileSync(file);
  bytes[10] = (bytes[10] ?? 0) ^ 0xff;
  fs.writeFileSync(file, bytes);
}

describe('refusalNamingTheVolume', () => {
  it('names the damaged one of the volumes holding the chunk (7i), then the chunk', async () => {
    const v = volumes();
    damage('vol-0002.tar');
    const err = badChunk('vol-0001.tar,vol-0002.tar');
    const r = await refusalNamingTheVolume(err, volumeFiles(v, dir, new Map()));
    expect(r).toBeInstanceOf(EcluseError);
    expect(r.code).toBe('E_DIGEST');
    expect(r.context).toMatchObject({ check: 'volume-digest', volume: 'vol-0002.tar', folder: dir, chunk: 1 });
    expect(r.context.artifact).toBeUndefined();
    expect(r.message).toBe(
      `volume vol-0002.tar does not match the sha256 in the signed statement (read from ${dir}); ` +
        'the first bad chunk: img 1.0: chunk 2 of 3 (bytes 4–8, read from vol-0001.tar and vol-0002.tar)',
    );
  });

  it('reads each volume where it was found (a bundle spread over several media)', async () => {
    const v = volumes();
    const elsewhere = path.join(dir, 'other-stick');
    fs.mkdirSync(elsewhere);
    fs.renameSync(path.join(dir, 'vol-0001.tar'), path.join(elsewhere, 'vol-0001.tar'));
    damage(path.join('other-stick', 'vol-0001.tar'));
    const found = new Map([['vol-0001.tar', path.join(elsewhere, 'vol-0001.tar')]]);
    const r = await refusalNamingTheVolume(badChunk('vol-0001.tar'), volumeFiles(v, dir, found));
    expect(r.context).toMatchObject({ check: 'volume-digest', volume: 'vol-0001.tar', folder: elsewhere });
  });

  it('every volume holding the chunk is the signed one: the signed list is wrong, the chunk refusal stands', async () => {
    const err = badChunk('vol-0001.tar,vol-0002.tar');
    expect(await refusalNamingTheVolume(err, volumeFiles(volumes(), dir, new Map()))).toBe(err);
  });

  it('a volume that cannot be read again leaves the chunk refusal as it was', async () => {
    const v = volumes();
    fs.rmSync(path.join(dir, 'vol-0001.tar'));
    const err = badChunk('vol-0001.tar');
    expect(await refusalNamingTheVolume(err, volumeFiles(v, dir, new Map()))).toBe(err);
  });

  it('any other refusal, or a chunk with no volume named (a rebuilt delta), is returned unchanged', async () => {
    const v = volumes();
    damage('vol-0001.tar');
    const files = volumeFiles(v, dir, new Map());
    const other = new EcluseError('E_FORMAT', 'x', { check: 'volume-structure', volume: 'vol-0001.tar' });
    expect(await refusalNamingTheVolume(other, files)).toBe(other);
    const delta = new EcluseError('E_DIGEST', 'y', { check: 'artifact-chunk', chunk: 0 });
    expect(await refusalNamingTheVolume(delta, files)).toBe(delta);
  });
});
