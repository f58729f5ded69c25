/**
 * Every way a bundle can be wrong, through the real CLI: each refusal exits 1, prints exactly one JSON object
 * `{ok:false, code, message}` with --json and `CODE: message` as stderr's last line, leaves the store and the
 * monotonic state byte-for-byte as they were, and is audited as `import.refused` with its code.
 *
 * Each test has its own outside and inside homes (a bundle from a fresh outside home is sequence 1, which a fresh
 * inside home accepts); the keys are made once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendBytes,
  bundleOn,
  ecluse,
  editStatement,
  expectFailureOutput,
  expectImportRefused,
  flipByte,
  makeKeys,
  tmpDir,
  truncateBy,
  world,
  type Keys,
  type World,
} from '../helpers/world.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const BLOCK = 512;

type Predicate = { expires: string; artifacts: Array<{ properties: Record<string, string> }> };
const predicate = (s: Record<string, unknown>) => s.predicate as Predicate;

describe('import refuses', () => {
  let keysDir: string;
  let keys: Keys;
  const worlds: World[] = [];

  beforeAll(async () => {
    keysDir = tmpDir('ecluse-e2e-keys-');
    keys = await makeKeys(keysDir);
  });
  afterAll(() => {
    for (const w of worlds) w.cleanup();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  /** A fresh world with one image exported to `<root>/media`. */
  async function exported(o: { size?: number; exportArgs?: string[]; signers?: string[] } = {}) {
    const w = await world({ keys });
    worlds.push(w);
    await w.addImage('img', '1.0.0', o.size ?? 200 * KiB);
    const media = w.path('media');
    await w.exportTo(media, o.exportArgs ?? [], o.signers ? { signers: o.signers } : {});
    return { w, media, bundle: bundleOn(media) };
  }

  it('E_DIGEST: one flipped byte in the data area of a volume', async () => {
    const { w, media, bundle } = await exported();
    flipByte(bundle.volume(1), BLOCK + 4096);
    await expectImportRefused(w, media, 'E_DIGEST');
  });

  it('E_DIGEST: one flipped byte in a tar header block', async () => {
    const { w, media, bundle } = await exported();
    flipByte(bundle.volume(1), 3); // inside the entry name of the first header
    await expectImportRefused(w, media, 'E_DIGEST');
  });

  it.each([
    ['the expiry', (s: Record<string, unknown>) => (predicate(s).expires = '2099-01-01T00:00:00Z')],
    [
      'an artifact property',
      (s: Record<string, unknown>) => (predicate(s).artifacts[0]!.properties.os_distro = 'evil'),
    ],
  ])('E_SIGNATURE: the statement edited after signing (%s)', async (_what, edit) => {
    const { w, media, bundle } = await exported({ signers: [keys.signer('alice'), keys.signer('bob')] });
    editStatement(bundle, edit);
    await expectImportRefused(w, media, 'E_SIGNATURE');
  });

  it('E_UNTRUSTED_SIGNER: a bundle signed by a key of another site', async () => {
    const foreignDir = tmpDir('ecluse-e2e-foreign-');
    try {
      const foreign = await makeKeys(foreignDir, ['mallory']);
      const { w, media } = await exported({ signers: [foreign.signer('mallory')] });
      await expectImportRefused(w, media, 'E_UNTRUSTED_SIGNER');
    } finally {
      fs.rmSync(foreignDir, { recursive: true, force: true });
    }
  });

  it('E_REPLAY: the same bundle imported a second time', async () => {
    const { w, media } = await exported();
    const first = await w.importJson(media);
    expect(first.code, first.stderr).toBe(0);
    await expectImportRefused(w, media, 'E_REPLAY');
  });

  it('E_WRONG_SITE: a bundle made for another site', async () => {
    const { w, media } = await exported({ exportArgs: ['--site', 'other'] });
    const r = await expectImportRefused(w, media, 'E_WRONG_SITE');
    expect(r.stderr).toContain('other');
  });

  it('E_MISSING_VOLUME: a volume of the bundle is not on the media, and is named', async () => {
    const { w, media, bundle } = await exported({ size: 2.5 * MiB, exportArgs: ['--media-size', '1M'] });
    expect(bundle.volumes.length).toBeGreaterThanOrEqual(3);
    fs.rmSync(bundle.volume(2));
    const r = await expectImportRefused(w, media, 'E_MISSING_VOLUME');
    expect((r.json as { message: string }).message).toContain('vol-0002.tar');
  });

  it('E_UNEXPECTED_FILE: a file the statement does not name in the volumes folder', async () => {
    const { w, media, bundle } = await exported();
    fs.writeFileSync(path.join(bundle.volumesDir, 'notes.txt'), 'hello\n');
    await expectImportRefused(w, media, 'E_UNEXPECTED_FILE');
  });

  it('accepts a bundle beside files outside ecluse/ (a vfat stick has System Volume Information)', async () => {
    const { w, media } = await exported();
    fs.mkdirSync(path.join(media, 'System Volume Information'));
    fs.writeFileSync(path.join(media, 'System Volume Information', 'x'), 'indexer state');
    fs.writeFileSync(path.join(media, 'README.txt'), 'not ours');
    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ ok: true, images: [{ name: 'img', version: '1.0.0' }] });
  });

  it('E_SIZE: a truncated volume', async () => {
    const { w, media, bundle } = await exported();
    truncateBy(bundle.volume(1), BLOCK);
    await expectImportRefused(w, media, 'E_SIZE');
  });

  it('E_SIZE: a volume with trailing bytes appended', async () => {
    const { w, media, bundle } = await exported();
    appendBytes(bundle.volume(1), Buffer.alloc(BLOCK * 2));
    await expectImportRefused(w, media, 'E_SIZE');
  });

  it('a skipped export is named, not blocking: 3 is accepted above the gap, then 2 late; 2 again is E_REPLAY', async () => {
    const w = await world({ keys });
    worlds.push(w);
    for (const n of [1, 2, 3]) {
      await w.addImage(`img-${n}`, '1.0', 64 * KiB);
      await w.exportTo(w.path(`media-${n}`));
    }
    const first = await w.importJson(w.path('media-1'));
    expect(first.code, first.stderr).toBe(0);

    const third = await w.importJson(w.path('media-3'));
    expect(third.code, third.stderr).toBe(0);
    expect(third.json).toMatchObject({ ok: true, bundle: { sequence: 3 }, chain: { position: 'ahead', missing: [2] } });

    const late = await w.importJson(w.path('media-2'));
    expect(late.code, late.stderr).toBe(0);
    expect(late.json).toMatchObject({
      ok: true,
      bundle: { sequence: 2 },
      chain: { position: 'late', successor: 3 },
      images: [{ name: 'img-2' }],
    });
    await expectImportRefused(w, w.path('media-2'), 'E_REPLAY');
  });
});

describe('the CLI refuses to run', () => {
  let root: string;
  beforeAll(() => {
    root = tmpDir();
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('E_NOT_INITIALIZED (exit 3) on a home that was never set up', async () => {
    const home = path.join(root, 'never-initialised');
    fs.mkdirSync(path.join(root, 'media'));
    const r = await ecluse(['import', path.join(root, 'media'), '--json'], { home });
    expect(r.code, r.stderr).toBe(3);
    expectFailureOutput(r, 'E_NOT_INITIALIZED');
    expect(fs.existsSync(home)).toBe(false);
  });

  it.each([
    ['export without --site', ['export', '--to', 'MEDIA', '--signer', 'x']],
    ['site init without --site', ['site', 'init', '--trust', 'x']],
    ['import without a media folder', ['import']],
    ['import with an unknown option', ['import', 'MEDIA', '--bogus']],
  ])('bad usage (exit 2): %s', async (_what, args) => {
    const media = path.join(root, 'usage-media');
    const r = await ecluse([...args.map((a) => (a === 'MEDIA' ? media : a)), '--json'], {
      home: path.join(root, 'usage-home'),
    });
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 2 });
    expect(fs.existsSync(media)).toBe(false);
  });
});
