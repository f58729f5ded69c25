/**
 * Issue 14, deleting a bundle image's bytes: where the site allows it (`glance_bundle_images writable`), a Glance API
 * delete of a bundle image is a retirement like `ecluse image retire` (audited with reason api, listed by `image list`
 * and in the next receipt, its file deleted); and a retirement removes the catalog row first and the bytes last, so a
 * file that cannot be deleted is named and left for `ecluse store check --repair`. Through the real CLI and the real
 * Glance API (`ecluse serve`).
 *
 * The retirement journey (delta bases, keepNewest, protected images, no readmission) is in image-retire.test.ts; the
 * shared pieces (the image list and receipt shapes) are test/helpers/image-retire.ts.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../conformance/peers.js';
import type { Listed } from '../helpers/image-retire.js';
import { receiptOn } from '../helpers/receipt.js';
import { CLI, PASSPHRASE, ecluseOk, world, type World } from '../helpers/world.js';

describe('a Glance API delete of a bundle image, where the site allows it', () => {
  let v: World;
  beforeAll(async () => {
    v = await world();
  }, 60_000);
  afterAll(() => v.cleanup());

  it('is a retirement: audited with reason api, in image list and the next receipt, its file deleted', async () => {
    await v.addImage('appliance', '1.0', 8192);
    await v.exportTo(v.path('m1'));
    const imported = await v.importJson(v.path('m1'));
    expect(imported.code, imported.stderr).toBe(0);
    const id = (imported.json as { images: Array<{ id: string }> }).images[0]?.id ?? '';
    await ecluseOk(['site', 'set', 'glance_bundle_images', 'writable'], { home: v.inside });
    const port = await freePort();
    const server = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`], {
      env: { ...process.env, ECLUSE_HOME: v.inside, ECLUSE_PASSPHRASE: PASSPHRASE },
      stdio: 'ignore',
    });
    try {
      let status = 0;
      for (let i = 0; i < 100 && status === 0; i++) {
        status = await fetch(`http://127.0.0.1:${port}/v2/images/${id}`, { method: 'DELETE' }).then(
          (r) => r.status,
          async () => {
            await new Promise((r) => setTimeout(r, 200));
            return 0;
          },
        );
      }
      expect(status).toBe(204);
      expect((await fetch(`http://127.0.0.1:${port}/v2/images/${id}`)).status).toBe(404);
    } finally {
      server.kill('SIGTERM');
    }
    expect(fs.existsSync(path.join(v.inside, 'store', 'images', id))).toBe(false);
    const listed = (await ecluseOk(['image', 'list', '--json'], { home: v.inside })).json as Listed;
    expect(listed.retired).toEqual([expect.objectContaining({ name: 'appliance', version: '1.0', reason: 'api' })]);
    await ecluseOk(['receipt', 'export', '--to', v.path('back')], { home: v.inside });
    expect(receiptOn(v.path('back')).retired).toEqual([expect.objectContaining({ name: 'appliance', version: '1.0' })]);
  }, 60_000);
  it('catalog first, bytes last: a file that cannot be deleted is named, and store check --repair removes it', async () => {
    await v.addImage('tools', '1.0', 4096);
    await v.exportTo(v.path('m2'));
    const imported = await v.importJson(v.path('m2'));
    expect(imported.code, imported.stderr).toBe(0);
    const id = (imported.json as { images: Array<{ id: string }> }).images[0]?.id ?? '';
    // Stands in for a file the deletion fails on (here: a folder where the file was, which rm without recursion refuses).
    const file = path.join(v.inside, 'store', 'images', id);
    fs.rmSync(file);
    fs.mkdirSync(file);
    fs.writeFileSync(path.join(file, 'x'), 'x');
    const r = await ecluseOk(['image', 'retire', 'tools@1.0'], { home: v.inside });
    expect(r.stdout).toContain(
      `  warning: could not delete the file(s) of ${id}: "ecluse store check --repair" removes them`,
    );
    const json = (await ecluseOk(['image', 'list', 'tools', '--json'], { home: v.inside })).json as Listed;
    expect(json.artifacts[0]?.images).toEqual([]); // the catalog row went first
    const repaired = await ecluseOk(['store', 'check', '--repair', '--json'], { home: v.inside });
    expect(JSON.stringify(repaired.json)).toContain(id);
    expect(fs.existsSync(file)).toBe(false);
  }, 60_000);
});
