/**
 * The foundation journey through the real CLI: keys → relay add → export (two signers, split over volumes) →
 * site init → verify (changes nothing) → import → the store holds exactly the bytes that went in.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bundleOn,
  ecluse,
  makeKeys,
  md5,
  sha256,
  sha512,
  snapshot,
  tmpDir,
  world,
  type Keys,
  type World,
} from '../helpers/world.js';

const MiB = 1024 * 1024;

interface ImportJson {
  ok: boolean;
  bundle: { id: string; sequence: number; signers: string[]; volumes: number };
  images: Array<{
    id: string;
    name: string;
    version: string;
    size: number;
    checksum: string;
    os_hash_value: string;
    sha256: string;
  }>;
}

/** The bytes the store holds for the image with this id (through the catalog's `file` column). */
function storedBytes(home: string, imageId: string): Buffer {
  const row = snapshot(home).images.find((r) => (r as { id: string }).id === imageId) as { file: string } | undefined;
  if (!row) throw new Error(`image ${imageId} is not in the catalog of ${home}`);
  return fs.readFileSync(path.join(home, 'store', 'images', row.file));
}

describe('the foundation journey', () => {
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

  async function freshWorld(): Promise<World> {
    const w = await world({ keys });
    worlds.push(w);
    return w;
  }

  it('exports with two signers, verifies without changing anything, and imports byte-identical', async () => {
    const w = await freshWorld();
    const img = await w.addImage('debian-13', '20261101', 300 * 1024);
    const media = w.path('media');
    const exported = await w.exportTo(media, [], { signers: [keys.signer('alice'), keys.signer('bob')] });
    expect(exported.json).toMatchObject({ ok: true, bundle: { sequence: 1, signers: ['alice', 'bob'] } });

    const before = snapshot(w.inside);
    const verified = await ecluse(['verify', media, '--json'], { home: w.inside });
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.json).toMatchObject({ ok: true, images: [] });
    expect(snapshot(w.inside)).toEqual(before);

    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    const out = r.json as ImportJson;
    expect(out.ok).toBe(true);
    expect(out.bundle.id).toBe(bundleOn(media).id);
    expect([...out.bundle.signers].sort()).toEqual(['alice', 'bob']);
    expect(out.images).toHaveLength(1);
    const image = out.images[0]!;
    expect(image).toMatchObject({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'debian-13',
      version: '20261101',
      size: img.bytes.length,
      checksum: md5(img.bytes),
      os_hash_value: sha512(img.bytes),
      sha256: sha256(img.bytes),
    });
    expect(storedBytes(w.inside, image.id).equals(img.bytes)).toBe(true);

    const after = snapshot(w.inside);
    expect(after.images).toHaveLength(1);
    expect(after.stations).toHaveLength(1);
    expect(after.bundles).toHaveLength(1);
    expect(after.staging).toEqual([]);
  });

  it('splits an image larger than --media-size over several volumes and imports it intact', async () => {
    const w = await freshWorld();
    const img = await w.addImage('big', '1.0.0', 3.5 * MiB);
    const media = w.path('media');
    await w.exportTo(media, ['--media-size', '1M']);

    const b = bundleOn(media);
    expect(b.volumes.length).toBeGreaterThanOrEqual(4);
    for (const v of b.volumes) {
      expect(v).toMatch(/^vol-\d{4}\.tar$/);
      expect(fs.statSync(path.join(b.volumesDir, v)).size).toBeLessThanOrEqual(MiB);
    }

    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    const out = r.json as ImportJson;
    expect(out.bundle.volumes).toBe(b.volumes.length);
    const image = out.images[0]!;
    expect(image).toMatchObject({ name: 'big', version: '1.0.0', size: img.bytes.length, sha256: sha256(img.bytes) });
    expect(storedBytes(w.inside, image.id).equals(img.bytes)).toBe(true);
  });

  it('carries later bundles of the same station as increments on the chain', async () => {
    const w = await freshWorld();
    const first = await w.addImage('appliance', '1.0.0', 64 * 1024);
    await w.exportTo(w.path('media-1'));
    const second = await w.addImage('appliance', '1.1.0', 64 * 1024);
    await w.exportTo(w.path('media-2'));

    for (const [media, img, sequence] of [
      ['media-1', first, 1],
      ['media-2', second, 2],
    ] as const) {
      const r = await w.importJson(w.path(media));
      expect(r.code, r.stderr).toBe(0);
      const out = r.json as ImportJson;
      expect(out.bundle.sequence).toBe(sequence);
      expect(out.images.map((i) => `${i.name} ${i.version}`)).toEqual([`${img.name} ${img.version}`]);
      expect(storedBytes(w.inside, out.images[0]!.id).equals(img.bytes)).toBe(true);
    }
    expect(snapshot(w.inside).images).toHaveLength(2);
  });
});
