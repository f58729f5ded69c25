/**
 * Content-defined deltas through the real CLI (issue 7, docs/FORMAT.md 4.6): release 1 of an image is exported and
 * imported, the receipt goes back out, release 2 differs from it in 5% of its 64 KiB blocks (qcow2's cluster size);
 * the second bundle carries under 15% of the image and the image rebuilt inside is bit-identical. Then the ways a
 * delta can be wrong: its base gone from the store, a carried byte flipped, a recipe edited after signing.
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bundleOn,
  copyMedia,
  ecluse,
  ecluseOk,
  editStatement,
  expectImportRefused,
  flipByte,
  PASSPHRASE,
  sha256,
  sha512,
  world,
  type World,
  mediaDir,
} from '../helpers/world.js';
import { editAndResign } from '../helpers/hostile.js';
import { loadSigner } from '../../keys/signer.js';

const BLOCK = 64 * 1024;
const BLOCKS = 512; // 32 MiB

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

/** Release 2: `share` of the blocks, spread over the image, replaced by new bytes. */
function nextRelease(v1: Buffer, share: number, seed: number): { bytes: Buffer; changed: number } {
  const v2 = Buffer.from(v1);
  const changed = Math.round(BLOCKS * share);
  const step = BLOCKS / changed;
  for (let k = 0; k < changed; k++) {
    const block = Math.floor(k * step + (seed % 7));
    pseudoRandom(BLOCK, seed + k + 1).copy(v2, block * BLOCK);
  }
  return { bytes: v2, changed };
}

/** Moves the first copy-from-base op of the (parsed) statement's first artifact by `by` bytes. */
function shiftFirstCopy(s: Record<string, unknown>, by: number): void {
  const p = s.predicate as { artifacts: Array<{ delta: { ops: Array<{ from: string; offset?: number }> } }> };
  const op = p.artifacts[0]?.delta.ops.find((o) => o.from === 'base');
  if (!op || op.offset === undefined) throw new Error('the recipe has no copy from its base');
  op.offset += by;
}

interface Exported {
  bundle: { sequence: number; bytes: number; volumes: Array<{ size: number }> };
  artifacts: Array<{ version: string; size: number; delta?: { base: string; carried: number; saved: number } }>;
  bytesSaved: number;
}

function storedImage(home: string, name: string, version: string): Buffer {
  const db = new Database(path.join(home, 'ecluse.sqlite'), { readonly: true });
  try {
    const row = db
      .prepare('SELECT file FROM images WHERE artifact_name = ? AND artifact_version = ?')
      .get(name, version) as { file: string } | undefined;
    if (!row) throw new Error(`${name} ${version} is not in the store`);
    return fs.readFileSync(path.join(home, 'store', 'images', row.file));
  } finally {
    db.close();
  }
}

describe('content-defined deltas', () => {
  let w: World;
  let v2: Buffer;
  let deltaMedia: string;
  const out = () => ({ home: w.outside });

  async function add(version: string, bytes: Buffer) {
    const file = w.path(`cloud-${version}.raw`);
    fs.writeFileSync(file, bytes);
    await ecluseOk(
      ['relay', 'add', file, '--name', 'cloud', '--version', version, '--disk-format', 'raw', '--json'],
      out(),
    );
  }

  async function receiptBack(n: number) {
    await ecluseOk(['receipt', 'export', '--to', w.path(`back${n}`), '--json'], { home: w.inside });
    await ecluseOk(['relay', 'receipt', 'import', w.path(`back${n}`), '--json'], out());
  }

  beforeAll(async () => {
    w = await world();
    const v1 = pseudoRandom(BLOCKS * BLOCK, 1);
    await add('1.0', v1);
    await w.exportTo(w.path('m1'));
    const i1 = await w.importJson(w.path('m1'));
    expect(i1.code, i1.stderr).toBe(0);
    await ecluseOk(['receipt', 'key', '--out', w.path('receipt.pub'), '--json'], { home: w.inside });
    await ecluseOk(['relay', 'receipt', 'trust', w.path('receipt.pub'), '--site', w.site, '--json'], out());
    await receiptBack(1);
    const next = nextRelease(v1, 0.05, 42);
    expect(next.changed).toBe(26);
    v2 = next.bytes;
    await add('2.0', v2);
    deltaMedia = w.path('m2');
  }, 120_000);
  afterAll(() => w.cleanup());

  it('plans the delta before writing anything', async () => {
    const plan = (await ecluseOk(['export', '--plan', '--site', w.site, '--json'], out())).json as {
      plan: { bytes: number; bytesSaved: number; artifacts: Array<{ delta?: { base: string; carried: number } }> };
    };
    expect(plan.plan.artifacts[0]?.delta?.base).toBe('cloud@1.0');
    expect(plan.plan.bytes).toBeLessThan(v2.length * 0.15);
    expect(plan.plan.bytesSaved).toBeGreaterThan(v2.length * 0.85);
  });

  it('sends under 15% of a release that differs in 5% of its blocks, and rebuilds it bit-identical inside', async () => {
    const e2 = (await w.exportTo(deltaMedia)).json as Exported;
    const a = e2.artifacts[0];
    expect(a?.delta?.base).toBe('cloud@1.0');
    const onMedia = e2.bundle.volumes.reduce((n, v) => n + v.size, 0);
    expect(onMedia).toBe(e2.bundle.bytes);
    console.info(
      `delta: ${onMedia} bytes on the media for a ${v2.length}-byte release (${((100 * onMedia) / v2.length).toFixed(1)}%), ${a?.delta?.carried} carried`,
    );
    expect(onMedia).toBeLessThan(v2.length * 0.15);
    expect(onMedia).toBeGreaterThan(v2.length * 0.05); // the changed blocks do travel
    expect(e2.bytesSaved).toBe(v2.length - (a?.delta?.carried ?? 0));
    copyMedia(deltaMedia, w.path('m2-pristine'));

    const verify = await ecluse(['verify', deltaMedia, '--json'], { home: w.inside });
    expect(verify.code, verify.stderr).toBe(0);
    const i2 = await w.importJson(deltaMedia);
    expect(i2.code, i2.stderr).toBe(0);
    expect(JSON.stringify(i2.json)).toContain('delta-base');
    const rebuilt = storedImage(w.inside, 'cloud', '2.0');
    expect(rebuilt.length).toBe(v2.length);
    expect(sha256(rebuilt)).toBe(sha256(v2));
    expect(sha512(rebuilt)).toBe(sha512(v2));
    expect(rebuilt.equals(v2)).toBe(true);
  });

  it('refuses a delta whose base is not in the store, changing nothing', async () => {
    const other = await w.newInside('fresh-inside');
    // The fresh station has no release 1: bring bundle 1 in first so the chain holds, then drop its image.
    expect((await w.importJson(w.path('m1'), other)).code).toBe(0);
    const db = new Database(path.join(other, 'ecluse.sqlite'));
    const row = db.prepare("SELECT id, file FROM images WHERE artifact_version = '1.0'").get() as {
      id: string;
      file: string;
    };
    db.prepare('UPDATE images SET file = NULL, status = ? WHERE id = ?').run('deleted', row.id);
    db.close();
    fs.rmSync(path.join(other, 'store', 'images', row.file));
    const r = await expectImportRefused(w, w.path('m2-pristine'), 'E_DELTA_BASE', other);
    expect(r.stdout).toContain('cloud 1.0');
  });

  it('refuses a flipped byte in the carried chunks (E_DIGEST)', async () => {
    const other = await w.newInside('flip-inside');
    expect((await w.importJson(w.path('m1'), other)).code).toBe(0);
    const media = copyMedia(w.path('m2-pristine'), w.path('m2-flipped'));
    const vol = path.join(bundleOn(media).volumesDir, 'vol-0001.tar');
    flipByte(vol, 512 + 100);
    await expectImportRefused(w, media, 'E_DIGEST', other);
  });

  it('refuses a recipe edited after signing (E_SIGNATURE)', async () => {
    const other = await w.newInside('edit-inside');
    expect((await w.importJson(w.path('m1'), other)).code).toBe(0);
    const media = copyMedia(w.path('m2-pristine'), w.path('m2-edited'));
    editStatement(bundleOn(media), (s) => shiftFirstCopy(s, 512));
    await expectImportRefused(w, media, 'E_SIGNATURE', other);
  });

  it('refuses a validly signed recipe that does not rebuild the signed image (E_DIGEST)', async () => {
    // A compromised export station holding a signer key: the recipe copies the wrong base bytes.
    const other = await w.newInside('lying-inside');
    expect((await w.importJson(w.path('m1'), other)).code).toBe(0);
    const media = copyMedia(w.path('m2-pristine'), w.path('m2-lying'));
    const alice = await loadSigner(w.keys.signer('alice'), () => Promise.resolve(PASSPHRASE));
    await editAndResign(bundleOn(media), [alice], (s) => shiftFirstCopy(s, 512));
    const r = await expectImportRefused(w, media, 'E_DIGEST', other);
    expect(r.stdout).toContain('rebuilt from the bundle and the base cloud 1.0');
  });

  it('refuses a signed recipe that reads past the end of its base (E_FORMAT)', async () => {
    const other = await w.newInside('past-inside');
    expect((await w.importJson(w.path('m1'), other)).code).toBe(0);
    const media = copyMedia(w.path('m2-pristine'), w.path('m2-past'));
    const alice = await loadSigner(w.keys.signer('alice'), () => Promise.resolve(PASSPHRASE));
    await editAndResign(bundleOn(media), [alice], (s) => shiftFirstCopy(s, BLOCKS * BLOCK));
    const r = await expectImportRefused(w, media, 'E_FORMAT', other);
    expect(r.stdout).toContain('reads past the end of its base');
  });

  it('sends whole with --no-delta', async () => {
    const plan = (await ecluseOk(['export', '--plan', '--site', w.site, '--all', '--no-delta', '--json'], out()))
      .json as { plan: { bytes: number; bytesSaved: number } };
    expect(plan.plan.bytesSaved).toBe(0);
    expect(plan.plan.bytes).toBeGreaterThan(v2.length * 2);
  });

  it('replaces a delta bundle refused for a base deleted inside with a new bundle built from the next receipt', async () => {
    // The inside holds 1.0 and 2.0 (previous tests); 3.0 goes out as a delta against 2.0.
    await receiptBack(2);
    const v3 = nextRelease(v2, 0.05, 77).bytes;
    await add('3.0', v3);
    const e3 = (await w.exportTo(w.path('m3'))).json as Exported;
    expect(e3.bundle.sequence).toBe(3);
    expect(e3.artifacts[0]?.delta?.base).toBe('cloud@2.0');

    // An operator deletes 2.0 inside (what Glance's DELETE does: the row and the file go).
    const db = new Database(path.join(w.inside, 'ecluse.sqlite'));
    const row = db.prepare("SELECT id, file FROM images WHERE artifact_version = '2.0'").get() as {
      id: string;
      file: string;
    };
    db.prepare('DELETE FROM images WHERE id = ?').run(row.id);
    db.close();
    fs.rmSync(path.join(w.inside, 'store', 'images', row.file));
    await expectImportRefused(w, w.path('m3'), 'E_DELTA_BASE');

    // The receipt carries the refusal out; the export station says what to do, then does it.
    await receiptBack(3);
    const blocked = await ecluse(
      ['export', '--to', mediaDir(w.path('m3b')), '--site', w.site, '--signer', w.keys.signer('alice'), '--json'],
      out(),
    );
    expect(blocked.code).toBe(1);
    expect(blocked.json).toMatchObject({ ok: false, code: 'E_UNACKNOWLEDGED' });
    expect(String((blocked.json as { message: string }).message)).toContain('--replace 3');
    const e3b = (await w.exportTo(w.path('m3b'), ['--replace', '3'])).json as Exported & {
      replaced: Array<{ sequence: number }>;
    };
    expect(e3b.bundle.sequence).toBe(3);
    expect(e3b.replaced).toMatchObject([{ sequence: 3 }]);
    expect(e3b.artifacts.map((a) => a.version)).toEqual(['3.0']);
    expect(e3b.artifacts[0]?.delta?.base).toBe('cloud@1.0'); // what the receipt says the site still holds
    const i3 = await w.importJson(w.path('m3b'));
    expect(i3.code, i3.stderr).toBe(0);
    expect(storedImage(w.inside, 'cloud', '3.0').equals(v3)).toBe(true);
  });
});
