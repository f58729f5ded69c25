/**
 * Crash safety: an import killed with SIGKILL at any moment leaves the store, the catalog and the monotonic state as
 * before or as after, never between; `store check --repair` removes what the killed process left, after which the
 * store is consistent and the same media imports (or is a replay, if the kill came after the commit).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ecluse, ecluseOk, PASSPHRASE, snapshot, world, type World } from '../helpers/world.js';

let w: World;
let media: string;
let importMs = 0;

beforeAll(async () => {
  w = await world();
  media = w.path('media');
  await w.addImage('crash-image', '1.0.0', 24 * 1024 * 1024);
  await w.exportTo(media, ['--media-size', '4M']);
  const home = await w.newInside('timing');
  const started = Date.now();
  await ecluseOk(['import', media], { home });
  importMs = Date.now() - started;
});

afterAll(() => w.cleanup());

function killedImport(home: string, afterMs: number): Promise<NodeJS.Signals | number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, '--home', home, 'import', media], {
      stdio: 'ignore',
      env: { ...process.env, ECLUSE_PASSPHRASE: PASSPHRASE },
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), afterMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(signal ?? code);
    });
  });
}

describe('SIGKILL during import', () => {
  // Spread over the whole import, from process start to just after the commit; deterministic points.
  const fractions = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 0.97, 1.05, 1.2];

  it.each(fractions)('killed at %s of the import time: before or after, never between', async (fraction) => {
    const home = await w.newInside();
    const before = snapshot(home);
    await killedImport(home, Math.round(importMs * fraction));
    const after = snapshot(home);
    const imported = after.images.length > 0;
    if (!imported) {
      // Catalog and state as before; a file renamed in a transaction that never committed is an invisible orphan.
      expect({ images: after.images, stations: after.stations, bundles: after.bundles }).toEqual({
        images: before.images,
        stations: before.stations,
        bundles: before.bundles,
      });
    } else {
      expect(after.images).toHaveLength(1);
      expect(after.stations).toHaveLength(1);
      expect(after.bundles).toHaveLength(1);
    }
    // Whatever the kill left (staging, an orphan file) is found and removed; then the store is consistent.
    const repair = await ecluse(['store', 'check', '--repair', '--json'], { home });
    expect(repair.code, repair.stdout + repair.stderr).toBe(0);
    const check = await ecluse(['store', 'check', '--json'], { home });
    expect(check.json).toMatchObject({ ok: true, problems: [] });
    expect(fs.readdirSync(`${home}/store/staging`)).toEqual([]);
    if (!imported) expect(snapshot(home)).toEqual(before);
    // The media is then imported (or refused as a replay when the kill came after the commit).
    const again = await ecluse(['import', media, '--json'], { home });
    if (imported) expect(again.json).toMatchObject({ ok: false, code: 'E_REPLAY' });
    else expect(again.json, again.stderr).toMatchObject({ ok: true });
  });
});

describe('store check', () => {
  it('reports an image file changed behind the catalog, and --repair does not touch it', async () => {
    const home = await w.newInside();
    await ecluseOk(['import', media], { home });
    const file = snapshot(home).files[0]?.split(' ')[0] ?? '';
    const fd = fs.openSync(`${home}/store/images/${file}`, 'r+');
    fs.writeSync(fd, Buffer.from([0xff]), 0, 1, 1000);
    fs.closeSync(fd);
    const r = await ecluse(['store', 'check', '--repair', '--json'], { home });
    expect(r.code).toBe(1);
    expect(r.json).toMatchObject({ ok: false, code: 'E_STORE' });
    expect((r.json as { message: string }).message).toContain('digest-mismatch');
    expect(fs.existsSync(`${home}/store/images/${file}`)).toBe(true);
  });
});
