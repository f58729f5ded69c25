/**
 * Issue 14, names: `--name "Ubuntu 24.04 LTS (Noble)"` and `--name "débian-13-é"` (typed decomposed, stored NFC)
 * travel in the signed statement, become the Glance `name` served by `ecluse serve`, and come back out in the
 * signed receipt's inventory; a name with a control character is refused at `relay add` with the reason.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, PASSPHRASE, ecluse, ecluseOk, world, type World } from '../helpers/world.js';

let w: World | undefined;
let server: ChildProcess | undefined;
afterAll(() => {
  server?.kill('SIGTERM');
  w?.cleanup();
});

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('image names as operators write them', () => {
  it('travel from relay add to the Glance name and the receipt, in NFC', async () => {
    w = await world();
    const names = ['Ubuntu 24.04 LTS (Noble)', 'de\u0301bian-13-e\u0301'];
    for (const [i, name] of names.entries()) {
      // The first is a real qcow2 (a 1 GiB disk): its virtual_size comes from its header, as Glance's import does.
      const file = w.path(i === 0 ? 'img-0.qcow2' : `img-${i}.raw`);
      if (i === 0) execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '1G']);
      else fs.writeFileSync(file, Buffer.alloc(20_000, i + 1));
      const r = await ecluseOk(['relay', 'add', file, '--name', name, '--version', '1.0', '--json'], {
        home: w.outside,
      });
      expect((r.json as { artifact: { name: string } }).artifact.name).toBe(name.normalize('NFC'));
    }
    const media = w.path('media');
    await w.exportTo(media);
    const imported = await w.importJson(media);
    expect(imported.json, imported.stderr).toMatchObject({ ok: true });
    const got = (imported.json as { images: Array<{ name: string }> }).images.map((i) => i.name).sort();
    expect(got).toEqual(['Ubuntu 24.04 LTS (Noble)', 'débian-13-é'].sort());

    const port = await freePort();
    server = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`], {
      env: { ...process.env, ECLUSE_HOME: w.inside, ECLUSE_PASSPHRASE: PASSPHRASE },
      stdio: 'ignore',
    });
    let list: { images: Array<{ name: string; virtual_size: number | null; disk_format: string }> } | null = null;
    for (let i = 0; i < 100 && !list; i++) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v2/images`);
        if (res.ok) list = (await res.json()) as typeof list;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    expect(list?.images.map((i) => i.name).sort()).toEqual(['Ubuntu 24.04 LTS (Noble)', 'débian-13-é'].sort());
    expect(list?.images.find((i) => i.name === 'Ubuntu 24.04 LTS (Noble)')).toMatchObject({
      disk_format: 'qcow2',
      virtual_size: 1024 ** 3,
    });
    expect(list?.images.find((i) => i.name === 'débian-13-é')?.virtual_size).toBe(20_000); // raw: its size
    const one = await fetch(`http://127.0.0.1:${port}/v2/images?name=${encodeURIComponent('débian-13-é')}`);
    expect(((await one.json()) as { images: unknown[] }).images).toHaveLength(1);

    // The receipt carries the names back out and the export station takes it.
    const back = w.path('back');
    await ecluseOk(['receipt', 'key', '--out', w.path('receipt.pub')], { home: w.inside });
    await ecluseOk(['receipt', 'export', '--to', back], { home: w.inside });
    await ecluseOk(['relay', 'receipt', 'trust', w.path('receipt.pub'), '--site', w.site], { home: w.outside });
    const taken = await ecluseOk(['relay', 'receipt', 'import', back, '--json'], { home: w.outside });
    expect(taken.json).toMatchObject({ ok: true, receipts: [expect.objectContaining({ inventory: 2 })] });
  });

  it('refuses a name with a control character at relay add, saying which', async () => {
    const home = w?.outside ?? '';
    const file = w?.path('img-1.raw') ?? '';
    const r = await ecluse(['relay', 'add', file, '--name', 'evil\u202Etxt', '--version', '2'], { home });
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd()).toBe(
      'E_USAGE: invalid name: the image name holds the control or invisible character U+202E',
    );
  });
});
