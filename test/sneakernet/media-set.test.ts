/**
 * Reading one bundle from several media folders (sneakernet/media-set.ts) and the strict `trust/` folder of a bundle
 * (FORMAT.md 8.2), on real folders: volumes found across media in the order given, the bundle chosen across them,
 * media that disagree refused, and every kind of unexpected entry in `trust/` refused with its code.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { readBundleFiles } from '../../sneakernet/bundle-files.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { readBundleAcross } from '../../sneakernet/media-set.js';
import { expectRefusal, rmDir, tmpDir } from './fixtures.js';

const KEY = 'a'.repeat(64);
const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rmDir(d);
});

/** A medium holding bundle `id` with the given volumes (contents do not matter here: nothing is verified). */
async function medium(id: string, volumes: string[], o: { signature?: string; trust?: Record<string, Buffer> } = {}) {
  const root = await tmpDir('ecluse-media-set-');
  dirs.push(root);
  const b = path.join(root, 'ecluse', 'bundles', id);
  for (const d of ['signatures', 'certificates', 'volumes']) fs.mkdirSync(path.join(b, d), { recursive: true });
  fs.writeFileSync(path.join(b, 'signatures', `${KEY}.sigstore.json`), o.signature ?? '{"signed":true}');
  fs.writeFileSync(path.join(b, 'certificates', `${KEY}.pem`), 'certificate');
  for (const v of volumes) fs.writeFileSync(path.join(b, 'volumes', v), v);
  if (o.trust) {
    fs.mkdirSync(path.join(b, 'trust'));
    for (const [name, bytes] of Object.entries(o.trust)) fs.writeFileSync(path.join(b, 'trust', name), bytes);
  }
  return root;
}

describe('readBundleAcross', () => {
  it('finds every volume across the media, each where it lies, in any order given', async () => {
    const id = randomUUID();
    const a = await medium(id, ['vol-0001.tar']);
    const b = await medium(id, ['vol-0002.tar', 'vol-0003.tar']);
    const c = await medium(id, ['vol-0004.tar']);
    const files = await readBundleAcross([c, a, b]);
    expect(files.bundleId).toBe(id);
    expect(files.volumeFiles).toEqual(['vol-0001.tar', 'vol-0002.tar', 'vol-0003.tar', 'vol-0004.tar']);
    expect(files.volumeAt.get('vol-0001.tar')).toBe(path.join(a, 'ecluse', 'bundles', id, 'volumes', 'vol-0001.tar'));
    expect(files.volumeAt.get('vol-0003.tar')).toBe(path.join(b, 'ecluse', 'bundles', id, 'volumes', 'vol-0003.tar'));
    expect(files.paths.root).toBe(path.join(c, 'ecluse', 'bundles', id));
  });

  it('a volume on two media is taken from the first given', async () => {
    const id = randomUUID();
    const a = await medium(id, ['vol-0001.tar']);
    const b = await medium(id, ['vol-0001.tar', 'vol-0002.tar']);
    const files = await readBundleAcross([b, a]);
    expect(files.volumeAt.get('vol-0001.tar')?.startsWith(b)).toBe(true);
  });

  it('one medium reads as readBundleFiles does', async () => {
    const id = randomUUID();
    const a = await medium(id, ['vol-0001.tar']);
    expect(await readBundleAcross([a])).toEqual(await readBundleFiles(a, id));
  });

  it('refuses media whose signatures differ (E_FORMAT, check media-set)', async () => {
    const id = randomUUID();
    const a = await medium(id, ['vol-0001.tar']);
    const b = await medium(id, ['vol-0002.tar'], { signature: '{"signed":false}' });
    const e = await expectRefusal(
      readBundleAcross([a, b]),
      'E_FORMAT',
      `bundle ${id} on ${b} carries other signatures`,
    );
    expect(e.context).toMatchObject({ check: 'media-set', bundleId: id });
  });

  it('several bundles across the media without --bundle: E_TOO_MANY_BUNDLES; with it, the one asked for', async () => {
    const [x, y] = [randomUUID(), randomUUID()];
    const a = await medium(x, ['vol-0001.tar']);
    const b = await medium(y, ['vol-0001.tar']);
    await expectRefusal(readBundleAcross([a, b]), 'E_TOO_MANY_BUNDLES', 'choose one with --bundle');
    expect((await readBundleAcross([a, b], y)).bundleId).toBe(y);
    await expectRefusal(readBundleAcross([a, b], randomUUID()), 'E_NO_BUNDLE', `is on none of ${a}, ${b}`);
  });
});

describe("a bundle's trust/ folder (FORMAT.md 8.2)", () => {
  const rootDoc = (v: number, bytes = Buffer.from('{}')) => ({ [`root-${v}.${KEY}.sigstore.json`]: bytes });

  it('holds the revocation list and root documents', async () => {
    const id = randomUUID();
    const m = await medium(id, [], {
      trust: { 'revocations.sigstore.json': Buffer.from('list'), ...rootDoc(2), ...rootDoc(3) },
    });
    const files = await readBundleFiles(m, id);
    expect(files.revocations?.toString()).toBe('list');
    expect([...files.rootDocuments.keys()]).toEqual([`root-2.${KEY}.sigstore.json`, `root-3.${KEY}.sigstore.json`]);
  });

  it.each([
    ['notes.txt'],
    ['root-2.sigstore.json'],
    [`root-1234567.${KEY}.sigstore.json`],
    [`root-2.${KEY.toUpperCase()}.sigstore.json`],
    ['revocations.json'],
  ])('any other name (%s) is E_UNEXPECTED_FILE', async (name) => {
    const id = randomUUID();
    const m = await medium(id, [], { trust: { [name]: Buffer.from('x') } });
    const e = await expectRefusal(readBundleFiles(m, id), 'E_UNEXPECTED_FILE', `trust/${name}`);
    expect(e).toBeInstanceOf(EcluseError);
  });

  it('a root document over 256 KiB is E_FORMAT', async () => {
    const id = randomUUID();
    const m = await medium(id, [], { trust: rootDoc(2, Buffer.alloc(256 * 1024 + 1)) });
    await expectRefusal(readBundleFiles(m, id), 'E_FORMAT', 'over the 262144 allowed');
  });

  it('more than 64 root documents is E_FORMAT', async () => {
    const id = randomUUID();
    const trust = Object.assign({}, ...Array.from({ length: 65 }, (_, i) => rootDoc(i + 2))) as Record<string, Buffer>;
    const m = await medium(id, [], { trust });
    await expectRefusal(readBundleFiles(m, id), 'E_FORMAT', 'more than 64 root documents');
  });

  it('a link in trust/ is E_FORMAT', async () => {
    const id = randomUUID();
    const m = await medium(id, [], { trust: {} });
    fs.symlinkSync('/etc/hostname', path.join(m, 'ecluse', 'bundles', id, 'trust', 'revocations.sigstore.json'));
    await expectRefusal(readBundleFiles(m, id), 'E_FORMAT');
  });
});
