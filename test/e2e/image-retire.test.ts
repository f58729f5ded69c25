/**
 * Issue 14, the store's life: `ecluse image retire NAME@VERSION`, `image list`, `image prune` and the policy's
 * `keepNewest`, through the real CLI, the real Glance API (`ecluse serve`) and the real receipt path back out.
 *
 * The journey: cloud 1.0 is imported whole; its receipt goes out; cloud 2.0 comes back as a delta against 1.0. While
 * the newest bundle accepted from the export station is a delta against 1.0, retiring 1.0 is refused (E_IMAGE_IN_USE,
 * exit 1, nothing changed). Once a later bundle (3.0, whole) is accepted, 1.0 retires: gone from the catalog, the API
 * and the web view, its file deleted, audited, listed as `retired` in the next receipt (and out of its inventory),
 * which the export station takes. A retired version is never admitted again as new.
 *
 * A retirement by a Glance API delete, and a file that cannot be deleted, are in image-retire-deletion.test.ts; the
 * shared pieces (the image list and receipt shapes) are test/helpers/image-retire.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../conformance/peers.js';
import type { Listed } from '../helpers/image-retire.js';
import { receiptOn } from '../helpers/receipt.js';
import { CLI, PASSPHRASE, ecluse, ecluseOk, snapshot, world, type World } from '../helpers/world.js';

const BLOCK = 64 * 1024;
const BLOCKS = 32; // 2 MiB

/** Deterministic bytes (xorshift), so a failure reproduces. */
function pseudoRandom(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
}

/** The next release: two blocks changed, the rest shared (a delta carries a small part of it). */
function nextRelease(prev: Buffer, seed: number): Buffer {
  const next = Buffer.from(prev);
  pseudoRandom(BLOCK, seed).copy(next, 3 * BLOCK);
  pseudoRandom(BLOCK, seed + 1).copy(next, 20 * BLOCK);
  return next;
}

const lastLine = (stderr: string) => stderr.trimEnd().split('\n').pop() ?? '';

describe('retiring images from the store', () => {
  let w: World;
  let v1: Buffer;
  let v2: Buffer;
  let v3: Buffer;
  let receipts = 0;
  let station = '';
  const out = () => ({ home: w.outside });
  const inside = () => ({ home: w.inside });

  async function add(version: string, bytes: Buffer) {
    const file = w.path(`cloud-${version}.raw`);
    fs.writeFileSync(file, bytes);
    await ecluseOk(['relay', 'add', file, '--name', 'cloud', '--version', version, '--disk-format', 'raw'], out());
  }

  /** Exports what is new, imports it inside, and brings a receipt back out. */
  async function roundTrip(extra: string[] = []) {
    const media = w.path(`m${++receipts}`);
    await w.exportTo(media, extra);
    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    const back = w.path(`back${receipts}`);
    await ecluseOk(['receipt', 'export', '--to', back], inside());
    await ecluseOk(['relay', 'receipt', 'import', back], out());
    return { import: r, back };
  }

  const list = async (name?: string) =>
    (await ecluseOk(['image', 'list', ...(name ? [name] : []), '--json'], inside())).json as Listed;

  beforeAll(async () => {
    w = await world();
    v1 = pseudoRandom(BLOCKS * BLOCK, 7);
    v2 = nextRelease(v1, 100);
    v3 = nextRelease(v2, 200);
    await ecluseOk(['receipt', 'key', '--out', w.path('receipt.pub')], inside());
    await ecluseOk(['relay', 'receipt', 'trust', w.path('receipt.pub'), '--site', w.site], out());
    await add('1.0', v1);
    await roundTrip();
    await add('2.0', v2);
    const second = await roundTrip();
    // The premise: 2.0 travelled as a delta against 1.0.
    expect(JSON.stringify(second.import.json)).toContain('delta-base');
    station = (second.import.json as { bundle: { station: string } }).bundle.station;
  }, 180_000);
  afterAll(() => w.cleanup());

  it('lists what the store holds, newest first, the superseded version hidden', async () => {
    const l = await list('cloud');
    expect(l.artifacts).toHaveLength(1);
    expect(l.artifacts[0]?.images.map((i) => [i.version, i.listed])).toEqual([
      ['2.0', true],
      ['1.0', false],
    ]);
    expect(l.retired).toEqual([]);
  });

  it('refuses to retire the base of the newest accepted delta (E_IMAGE_IN_USE, exit 1), changing nothing', async () => {
    const before = snapshot(w.inside);
    const r = await ecluse(['image', 'retire', 'cloud@1.0', '--json'], inside());
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toBe(
      `E_IMAGE_IN_USE: cloud@1.0 may still be needed as a delta base: cloud@2.0 in ${station} #2 is a delta against it, and that station's next bundles may be too; import the bundles that carry those deltas first, or retire it anyway with --force (such a bundle is then refused with E_DELTA_BASE, and the export station replaces it: ecluse export --replace 2 --site ${w.site} --to MEDIA)`,
    );
    expect(r.json).toMatchObject({ ok: false, code: 'E_IMAGE_IN_USE', check: 'retire-delta-base' });
    const after = snapshot(w.inside);
    expect(after.images).toEqual(before.images);
    expect(after.files).toEqual(before.files);
  });

  it('bad usage and unknown images say so: E_USAGE (exit 2), E_NOT_FOUND (exit 3)', async () => {
    const usage = await ecluse(['image', 'retire', 'cloud'], inside());
    expect(usage.code).toBe(2);
    expect(lastLine(usage.stderr)).toBe(
      'E_USAGE: name an artifact as NAME@VERSION (e.g. debian-13@20261101), not "cloud"',
    );
    const missing = await ecluse(['image', 'retire', 'cloud@9.9'], inside());
    expect(missing.code).toBe(3);
    expect(lastLine(missing.stderr)).toBe(
      'E_NOT_FOUND: the store holds no cloud@9.9 from a bundle: see what it holds with "ecluse image list cloud"',
    );
  });

  it('retires it once a later bundle no longer builds on it: gone from catalog, API, web view and disk; audited', async () => {
    await add('3.0', v3);
    const third = await roundTrip(['--no-delta']);
    expect(JSON.stringify(third.import.json)).not.toContain('delta-base');
    const held = await list('cloud');
    const old = held.artifacts[0]?.images.find((i) => i.version === '1.0');
    expect(old).toBeDefined();
    const file = path.join(w.inside, 'store', 'images', old?.id ?? '');
    expect(fs.existsSync(file)).toBe(true);

    const r = await ecluseOk(['image', 'retire', 'cloud@1.0', '--json'], inside());
    expect(r.json).toMatchObject({
      ok: true,
      retired: {
        name: 'cloud',
        version: '1.0',
        bytes: v1.length,
        reason: 'operator',
        images: [old?.id],
        filesLeft: [],
        forced: false,
        shown: null,
      },
    });
    expect(fs.existsSync(file)).toBe(false);
    const after = await list('cloud');
    expect(after.artifacts[0]?.images.map((i) => i.version)).toEqual(['3.0', '2.0']);
    expect(after.retired).toEqual([expect.objectContaining({ name: 'cloud', version: '1.0', reason: 'operator' })]);

    const db = new Database(path.join(w.inside, 'ecluse.sqlite'), { readonly: true });
    try {
      const ev = db
        .prepare("SELECT message, artifact, details FROM audit WHERE kind = 'image.retired'")
        .all() as Array<{
        message: string;
        artifact: string;
        details: string;
      }>;
      expect(ev).toHaveLength(1);
      expect(ev[0]?.artifact).toBe('cloud@1.0');
      expect(ev[0]?.message).toBe(`cloud@1.0 retired (by the operator): image(s) ${old?.id}`);
    } finally {
      db.close();
    }

    // Again: nothing to do, said as such.
    const again = await ecluse(['image', 'retire', 'cloud@1.0'], inside());
    expect(again.code).toBe(3);
    expect(lastLine(again.stderr)).toMatch(
      /^E_NOT_FOUND: cloud@1\.0 was already retired on \d{4}-\d\d-\d\dT[0-9:]+Z: nothing to do$/,
    );

    // The Glance API and the web view no longer show it.
    const port = await freePort();
    const server: ChildProcess = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`], {
      env: { ...process.env, ECLUSE_HOME: w.inside, ECLUSE_PASSPHRASE: PASSPHRASE },
      stdio: 'ignore',
    });
    try {
      type Images = { images: Array<{ id: string; ecluse_version?: string }> };
      const listedVersions = async (query: string): Promise<string[]> => {
        for (let i = 0; i < 100; i++) {
          try {
            const res = await fetch(`http://127.0.0.1:${port}/v2/images${query}`);
            if (res.ok) return ((await res.json()) as Images).images.map((x) => x.ecluse_version ?? '?').sort();
          } catch {
            await new Promise((res) => setTimeout(res, 200));
          }
        }
        return [];
      };
      expect(await listedVersions('')).toEqual(['3.0']);
      expect(await listedVersions('?os_hidden=true')).toEqual(['2.0']);
      expect((await fetch(`http://127.0.0.1:${port}/v2/images/${old?.id ?? ''}`)).status).toBe(404);
      const page = await (await fetch(`http://127.0.0.1:${port}/audit/artifact/cloud`)).text();
      const versions = page.slice(page.indexOf('<table id="versions">'), page.indexOf('</table>'));
      expect(versions).toContain('3.0');
      expect(versions).not.toContain(old?.id ?? 'x');
      const retired = page.slice(page.indexOf('<table id="retired">'));
      expect(retired).toMatch(/<td>1\.0<\/td>\s*<td>[0-9T:-]+Z<\/td>\s*<td>ecluse image retire<\/td>/);
    } finally {
      server.kill('SIGTERM');
    }
  }, 120_000);

  it('the next receipt lists it as retired and not in its inventory; the export station takes it', async () => {
    const back = w.path('back-retired');
    await ecluseOk(['receipt', 'export', '--to', back], inside());
    const r = receiptOn(back);
    expect(r.retired).toEqual([expect.objectContaining({ name: 'cloud', version: '1.0' })]);
    expect(r.inventory.artifacts.map((a) => a.version).sort()).toEqual(['2.0', '3.0']);
    const taken = await ecluseOk(['relay', 'receipt', 'import', back, '--json'], out());
    expect(taken.json).toMatchObject({ ok: true, receipts: [expect.objectContaining({ status: 'taken' })] });
    const sites = await ecluseOk(['relay', 'sites', '--json'], out());
    expect(sites.json).toMatchObject({
      sites: [{ site: w.site, retiredThere: [expect.objectContaining({ name: 'cloud', version: '1.0' })] }],
    });
    const human = await ecluseOk(['relay', 'sites'], out());
    expect(human.stdout).toContain('  retired there: cloud 1.0 (never sent again, never a delta base)');
  });

  it('keepNewest in the policy retires older versions after an import and with image prune, keeping a needed base', async () => {
    fs.writeFileSync(
      w.path('keep.json'),
      JSON.stringify({ version: 1, rules: [{ name: 'cloud-two', artifacts: ['cloud'], keepNewest: 1 }] }),
    );
    await ecluseOk(['policy', 'apply', w.path('keep.json')], inside());
    expect((await list('cloud')).artifacts[0]?.keepNewest).toBe(1);
    const pruned = await ecluseOk(['image', 'prune', '--json'], inside());
    expect(pruned.json).toMatchObject({
      ok: true,
      retired: [expect.objectContaining({ name: 'cloud', version: '2.0', reason: 'keep-newest' })],
      kept: [],
    });
    expect((await list('cloud')).artifacts[0]?.images.map((i) => i.version)).toEqual(['3.0']);

    // 4.0 comes as a delta against 3.0: keepNewest 1 would retire 3.0 after the import, but it is the base the
    // newest accepted bundle built on, so it is kept and named (the import itself succeeds).
    await add('4.0', nextRelease(v3, 300));
    const fourth = await roundTrip();
    expect(JSON.stringify(fourth.import.json)).toContain('delta-base');
    expect(fourth.import.json).toMatchObject({
      ok: true,
      retired: [],
      kept: [expect.objectContaining({ name: 'cloud', version: '3.0' })],
    });
    const prunedLater = await ecluseOk(['image', 'prune'], inside());
    expect(prunedLater.stdout).toMatch(/^kept cloud@3\.0: cloud@3\.0 may still be needed as a delta base/m);

    // 5.0 whole: the import retires 3.0 and 4.0 by itself (keepNewest 1), and lists them in its --json.
    await add('5.0', nextRelease(nextRelease(v3, 300), 400));
    const fifth = await roundTrip(['--no-delta']);
    expect(fifth.import.json).toMatchObject({
      ok: true,
      retired: expect.arrayContaining([
        expect.objectContaining({ version: '3.0', reason: 'keep-newest' }),
        expect.objectContaining({ version: '4.0', reason: 'keep-newest' }),
      ]),
      kept: [],
    });
    const now = await list('cloud');
    expect(now.artifacts[0]?.images.map((i) => [i.version, i.listed])).toEqual([['5.0', true]]);
    expect(now.retired.map((r) => r.version).sort()).toEqual(['1.0', '2.0', '3.0', '4.0']);
  }, 180_000);

  it('a protected image is not retired (E_IMAGE_IN_USE naming the command that unprotects it)', async () => {
    const id = (await list('cloud')).artifacts[0]?.images[0]?.id ?? '';
    const db = new Database(path.join(w.inside, 'ecluse.sqlite'));
    db.prepare('UPDATE images SET protected = 1 WHERE id = ?').run(id);
    db.close();
    const r = await ecluse(['image', 'retire', 'cloud@5.0', '--force'], inside());
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toBe(
      `E_IMAGE_IN_USE: cloud@5.0 is protected (image ${id}): unprotect it first (openstack image set --unprotected ${id}), then retire it`,
    );
  });

  it('a retired version is not admitted again as new: E_ROLLBACK "installed and retired here"', async () => {
    const id = (await list('cloud')).artifacts[0]?.images[0]?.id ?? '';
    const db = new Database(path.join(w.inside, 'ecluse.sqlite'));
    db.prepare('UPDATE images SET protected = 0 WHERE id = ?').run(id);
    db.close();
    await ecluseOk(['image', 'retire', 'cloud@5.0'], inside());
    expect((await list('cloud')).artifacts[0]?.images).toEqual([]);
    // Another export station (same signers) sends cloud 5.0 again: every version is retired, none is in the store.
    const other = w.path('other-outside');
    await ecluseOk(
      ['relay', 'add', w.path('cloud-5.0.raw'), '--name', 'cloud', '--version', '5.0', '--disk-format', 'raw'],
      { home: other },
    );
    const media = w.path('m-again');
    fs.mkdirSync(media);
    await ecluseOk(['export', '--to', media, '--site', w.site, '--signer', w.keys.signer('alice')], { home: other });
    const r = await w.importJson(media);
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(/^E_ROLLBACK: cloud 5\.0 is installed and retired here/);
  });
});
