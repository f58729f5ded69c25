/**
 * The export station signs only bytes it has proven: a stored image whose blob changed on disk since `relay add`
 * (same size, one byte flipped) is refused by `export` with E_DIGEST naming the image and the way out (`relay remove`,
 * then `relay add` again), before anything is signed; nothing stays on the media and nothing joins the site's chain.
 * The check holds for an image spread over several volumes (the byte flipped in a later piece), for a resend, and with
 * `--verify-all-digests` for a catalog whose md5 is wrong. `--no-md5` writes statements without the attested md5
 * (format 4.8) that import stations still import, computing Glance's checksum themselves.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statementOf } from '../helpers/hostile.js';
import {
  bundleOn,
  ecluse,
  ecluseOk,
  expectFailureOutput,
  flipByte,
  makeKeys,
  md5,
  mediaDir,
  sha256,
  tmpDir,
  world,
  type Keys,
  type World,
} from '../helpers/world.js';

const KiB = 1024;
let keysRoot: string;
let keys: Keys;
const worlds: World[] = [];

beforeAll(async () => {
  keysRoot = tmpDir('ecluse-stored-digests-');
  keys = await makeKeys(path.join(keysRoot, 'keys'), ['alice']);
});
afterAll(() => {
  for (const w of worlds) w.cleanup();
  fs.rmSync(keysRoot, { recursive: true, force: true });
});

async function newWorld(): Promise<World> {
  const w = await world({ keys });
  worlds.push(w);
  return w;
}

const blobOf = (w: World, hex: string) => path.join(w.outside, 'blobs', 'sha256', hex);

/** `export` as the operator types it, without throwing on a refusal. */
const exportRaw = (w: World, media: string, extra: string[] = []) =>
  ecluse(['export', '--to', mediaDir(media), '--site', w.site, '--signer', keys.signer('alice'), ...extra, '--json'], {
    home: w.outside,
  });

/** What the media holds under ecluse/bundles (hidden `.partial-*` folders included). */
const onMedia = (media: string) => {
  const dir = path.join(media, 'ecluse', 'bundles');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
};

const chainLength = (w: World) => {
  const db = new Database(path.join(w.outside, 'relay.sqlite'), { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM exports WHERE site = ?').get(w.site) as { n: number }).n;
  } finally {
    db.close();
  }
};

/** `why`: an algorithm (the whole digest differs) or the words naming the chunk that differs from the kept list. */
function expectStoredRefusal(r: Awaited<ReturnType<typeof ecluse>>, name: string, version: string, why: string) {
  expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 1 });
  const json = expectFailureOutput(r, 'E_DIGEST');
  const reason = why.startsWith('chunk ') ? why : `its ${why} is not the catalog's`;
  expect(json.message).toBe(
    `the stored copy of ${name} ${version} changed since it was added (${reason}); nothing was signed or kept: remove it (ecluse relay remove ${name}@${version}) and add the image again (ecluse relay add FILE --name ${name} --version ${version})`,
  );
}

describe('export proves the stored bytes before it signs them', () => {
  it('a flipped byte in the relay store is refused (E_DIGEST), nothing on the media, nothing in the chain; remove and add again, then it exports and imports', async () => {
    const w = await newWorld();
    const first = await w.addImage('first', '1.0.0', 40 * KiB);
    const img = await w.addImage('img', '1.0.0', 300 * KiB);
    // The byte is flipped in the second half: with 128 KiB media the image spreads over volumes, the flip in a later one.
    flipByte(blobOf(w, sha256(img.bytes)), 250 * KiB);
    const media = w.path('media');
    const r = await exportRaw(w, media, ['--media-size', '180K']);
    // Checked by the chunk list relay add kept (one 4 MiB chunk: the whole image).
    expectStoredRefusal(
      r,
      'img',
      '1.0.0',
      `chunk 0, bytes 0-${300 * KiB - 1}, is not the one recorded with the catalog's sha256`,
    );
    expect(onMedia(media)).toEqual([]);
    expect(chainLength(w)).toBe(0);

    await ecluseOk(['relay', 'remove', 'img@1.0.0', '--json'], { home: w.outside });
    await ecluseOk(['relay', 'add', img.file, '--name', 'img', '--version', '1.0.0', '--disk-format', 'raw'], {
      home: w.outside,
    });
    const again = await exportRaw(w, media, ['--media-size', '180K']);
    expect(again.code, again.stderr).toBe(0);
    expect(bundleOn(media).volumes.length).toBeGreaterThan(2);
    const imported = await w.importJson(media);
    expect(imported.code, imported.stderr).toBe(0);
    const shas = (imported.json as { images: Array<{ sha256: string }> }).images.map((i) => i.sha256).sort();
    expect(shas).toEqual([sha256(first.bytes), sha256(img.bytes)].sort());
  });

  it('a resend of a bundle whose image changed on disk since is refused the same way', async () => {
    const w = await newWorld();
    const img = await w.addImage('img', '2.0.0', 64 * KiB);
    await w.exportTo(w.path('media-1'));
    flipByte(blobOf(w, sha256(img.bytes)), 0);
    const media = w.path('media-again');
    const r = await exportRaw(w, media, ['--resend', '1']);
    expectStoredRefusal(r, 'img', '2.0.0', 'sha256');
    expect(onMedia(media)).toEqual([]);
    expect(chainLength(w)).toBe(1);
  });

  it('a catalog whose md5 is wrong passes on sha256 alone, and is refused naming md5 with --verify-all-digests', async () => {
    const w = await newWorld();
    const img = await w.addImage('img', '3.0.0', 50 * KiB);
    const db = new Database(path.join(w.outside, 'relay.sqlite'));
    db.prepare('UPDATE artifacts SET md5 = ? WHERE name = ?').run('0'.repeat(32), 'img');
    db.close();
    const strict = w.path('media-strict');
    const r = await exportRaw(w, strict, ['--verify-all-digests']);
    expectStoredRefusal(r, 'img', '3.0.0', 'md5');
    expect(onMedia(strict)).toEqual([]);
    expect(md5(img.bytes)).not.toBe('0'.repeat(32));

    const plain = await exportRaw(w, w.path('media'));
    expect(plain.code, plain.stderr).toBe(0);
  });
});

describe('export --no-md5 (import stations older than format 4.8)', () => {
  it('writes a statement without md5; the import station computes the checksum itself', async () => {
    const w = await newWorld();
    const img = await w.addImage('img', '4.0.0', 70 * KiB);
    const media = w.path('media');
    const r = await exportRaw(w, media, ['--no-md5']);
    expect(r.code, r.stderr).toBe(0);
    const statement = statementOf(bundleOn(media)) as { predicate: { artifacts: Array<Record<string, unknown>> } };
    expect(statement.predicate.artifacts[0]).not.toHaveProperty('md5');
    expect(statement.predicate.artifacts[0]).toMatchObject({ sha256: sha256(img.bytes) });
    const imported = await w.importJson(media);
    expect(imported.code, imported.stderr).toBe(0);
    expect((imported.json as { images: Array<{ checksum: string }> }).images[0]?.checksum).toBe(md5(img.bytes));
  });

  it('does not go with --resend (the signed statement is written as it was): E_USAGE naming --replace', async () => {
    const w = await newWorld();
    await w.addImage('img', '5.0.0', 10 * KiB);
    await w.exportTo(w.path('media-1'));
    const r = await exportRaw(w, w.path('media-2'), ['--resend', '1', '--no-md5']);
    expect(r.code).toBe(2);
    expect(expectFailureOutput(r, 'E_USAGE').message).toMatch(/--replace 1 --site SITE --no-md5/);
  });
});
