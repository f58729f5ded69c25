/**
 * relay/checked-chunk-lists.ts through the real CLI, real SQLite and real hashing threads: `relay add` keeps the chunk
 * list of the bytes it hashed (the same pass as the catalog's sha256), and an image added without one (by a station
 * older than that) gets it from its first export, which proves it against the catalog's sha256 (the same bytes of one
 * pass hashed whole and listed); an export checks an image with a kept list by that list instead of hashing it whole,
 * and still refuses a byte changed in the store since, naming the chunk; a kept list that is not one digest per chunk,
 * or an export with --verify-all-digests, goes back to the whole sha256.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WRITER_CHUNK_SIZE } from '../../sneakernet/chunk-list.js';
import {
  bundleOn,
  ecluse,
  expectFailureOutput,
  flipByte,
  makeKeys,
  tmpDir,
  world,
  type AddedImage,
  type Keys,
  type World,
} from '../helpers/world.js';

const MiB = 1024 * 1024;
const hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function listOf(bytes: Buffer): string {
  let out = '';
  for (let at = 0; at < bytes.length; at += WRITER_CHUNK_SIZE) out += hex(bytes.subarray(at, at + WRITER_CHUNK_SIZE));
  return out;
}

function keptLists(w: World): Array<{ sha256: string; chunk_size: number; digests: string }> {
  const db = new Database(path.join(w.outside, 'relay.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare('SELECT sha256, chunk_size, digests FROM checked_chunk_lists').all() as Array<{
        sha256: string;
        chunk_size: number;
        digests: Buffer;
      }>
    ).map((r) => ({ ...r, digests: r.digests.toString('hex') }));
  } finally {
    db.close();
  }
}

/** The chunk list of the one artifact of the bundle on `media`, as its statement carries it. */
function statementList(media: string): { size: number; sha256: string } | undefined {
  const b = bundleOn(media);
  const [sig] = fs.readdirSync(b.signaturesDir);
  const env = JSON.parse(fs.readFileSync(path.join(b.signaturesDir, sig as string), 'utf8')) as {
    dsseEnvelope: { payload: string };
  };
  const statement = JSON.parse(Buffer.from(env.dsseEnvelope.payload, 'base64').toString('utf8')) as {
    predicate: { artifacts: Array<{ chunks?: { size: number; sha256: string } }> };
  };
  return statement.predicate.artifacts[0]?.chunks;
}

function blobOf(w: World, image: AddedImage): string {
  return path.join(w.outside, 'blobs', 'sha256', hex(image.bytes));
}

describe('chunk lists checked by an export are how later exports check the same image', () => {
  let keys: Keys;
  let root: string;
  const worlds: World[] = [];
  beforeAll(async () => {
    root = tmpDir('ecluse-checked-lists-');
    keys = await makeKeys(path.join(root, 'keys'));
  });
  afterAll(() => {
    for (const w of worlds) w.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
  });

  /** A station with one 9 MiB image (three chunks) exported once to the world's site. */
  async function exportedOnce(): Promise<{ w: World; image: AddedImage }> {
    const w = await world({ keys });
    worlds.push(w);
    const image = await w.addImage('debian-13', '1', 9 * MiB + 77);
    await w.exportTo(w.path('site-a'));
    return { w, image };
  }

  /** Forgets the kept lists, as on a station whose `relay add` kept none (before lists were kept at add). */
  function forgetLists(w: World): void {
    const db = new Database(path.join(w.outside, 'relay.sqlite'));
    db.prepare('DELETE FROM checked_chunk_lists').run();
    db.close();
  }

  const exportFor = (w: World, site: string, extra: string[] = []) =>
    ecluse(['export', '--to', w.path(site), '--site', site, '--signer', keys.signer('alice'), ...extra, '--json'], {
      home: w.outside,
    });

  it('relay add keeps the list of the bytes it hashed; the first export checks by it and carries it', async () => {
    const w = await world({ keys });
    worlds.push(w);
    const image = await w.addImage('debian-13', '1', 9 * MiB + 77);
    expect(keptLists(w)).toEqual([
      { sha256: hex(image.bytes), chunk_size: WRITER_CHUNK_SIZE, digests: listOf(image.bytes) },
    ]);
    const empty = await w.addImage('empty', '1', 0);
    expect(empty.bytes.length).toBe(0);
    expect(keptLists(w)).toHaveLength(1); // an empty image has no list
    await ecluse(['relay', 'remove', 'empty@1'], { home: w.outside });
    fs.mkdirSync(w.path('site-a'));
    const r = await exportFor(w, 'site-a');
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    expect(statementList(w.path('site-a'))).toEqual({ size: WRITER_CHUNK_SIZE, sha256: listOf(image.bytes) });
    const imported = await w.importJson(w.path('site-a'), await w.newInside('inside-a', 'site-a'));
    expect({ code: imported.code, stderr: imported.stderr }).toMatchObject({ code: 0 });
  });

  it("a byte changed in the store after relay add is refused at the first export by add's list", async () => {
    const w = await world({ keys });
    worlds.push(w);
    const image = await w.addImage('debian-13', '1', 9 * MiB + 77);
    const blob = blobOf(w, image);
    fs.chmodSync(blob, 0o644);
    flipByte(blob, 2 * WRITER_CHUNK_SIZE + 1);
    fs.mkdirSync(w.path('site-a'));
    const out = expectFailureOutput(await exportFor(w, 'site-a'), 'E_DIGEST');
    expect(out.message).toContain(`(chunk 2, bytes ${2 * WRITER_CHUNK_SIZE}-${9 * MiB + 76}`);
    expect(fs.readdirSync(path.join(w.path('site-a'), 'ecluse', 'bundles'))).toEqual([]);
  });

  it('an image added without a kept list: its first export proves and keeps one, the next site is checked by it', async () => {
    const w = await world({ keys });
    worlds.push(w);
    const image = await w.addImage('debian-13', '1', 9 * MiB + 77);
    forgetLists(w);
    await w.exportTo(w.path('site-a'));
    expect(keptLists(w)).toEqual([
      { sha256: hex(image.bytes), chunk_size: WRITER_CHUNK_SIZE, digests: listOf(image.bytes) },
    ]);
    fs.mkdirSync(w.path('site-b'));
    const r = await exportFor(w, 'site-b');
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    expect(statementList(w.path('site-b'))).toEqual({ size: WRITER_CHUNK_SIZE, sha256: listOf(image.bytes) });
    const inside = await w.newInside('inside-b', 'site-b');
    const imported = await w.importJson(w.path('site-b'), inside);
    expect({ code: imported.code, stderr: imported.stderr }).toMatchObject({ code: 0 });
    // Kept once: the second export proved nothing new.
    expect(keptLists(w)).toHaveLength(1);
  });

  it('a byte changed in the store since is refused by the list, naming the chunk; nothing is written', async () => {
    const { w, image } = await exportedOnce();
    const blob = blobOf(w, image);
    fs.chmodSync(blob, 0o644);
    flipByte(blob, WRITER_CHUNK_SIZE + 5);
    fs.mkdirSync(w.path('site-b'));
    const r = await exportFor(w, 'site-b');
    expect(r.code).toBe(1);
    const out = expectFailureOutput(r, 'E_DIGEST');
    expect(out.message).toContain(
      `the stored copy of debian-13 1 changed since it was added (chunk 1, bytes ${WRITER_CHUNK_SIZE}-${2 * WRITER_CHUNK_SIZE - 1}`,
    );
    expect(out.message).toContain('ecluse relay remove debian-13@1');
    expect(fs.readdirSync(path.join(w.path('site-b'), 'ecluse', 'bundles'))).toEqual([]);
  });

  it('a kept list that is not one digest per chunk is ignored: the image is hashed whole', async () => {
    const { w, image } = await exportedOnce();
    const db = new Database(path.join(w.outside, 'relay.sqlite'));
    db.prepare('UPDATE checked_chunk_lists SET digests = ?').run(Buffer.alloc(10));
    db.close();
    const blob = blobOf(w, image);
    fs.chmodSync(blob, 0o644);
    flipByte(blob, 5);
    fs.mkdirSync(w.path('site-b'));
    const out = expectFailureOutput(await exportFor(w, 'site-b'), 'E_DIGEST');
    expect(out.message).toContain("(its sha256 is not the catalog's)");
  });

  it('--verify-all-digests hashes the image whole even when a list was kept', async () => {
    const { w, image } = await exportedOnce();
    const blob = blobOf(w, image);
    fs.chmodSync(blob, 0o644);
    flipByte(blob, 5);
    fs.mkdirSync(w.path('site-b'));
    const out = expectFailureOutput(await exportFor(w, 'site-b', ['--verify-all-digests']), 'E_DIGEST');
    expect(out.message).toContain("(its sha256 is not the catalog's)");
  });
});
