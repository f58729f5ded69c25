/**
 * écluse's own package through the lock (docs/FORMAT.md 4.10), with the real CLI from dist/ and real .debs built by
 * dpkg-deb: exported beside a VM image, imported with --update-spool into a temporary spool, where the evidence
 * (`<sha256>.bundle/`, the bundle's signatures, certificates and trust files exactly) and the package
 * (`<sha256>.deb`) land, audited (`update.handed-over`), said by `import --json` and listed by the receipt. Refused
 * (nothing handed over, store and state unchanged): a policy that does not list the type, a version not newer, another
 * architecture, a flipped byte.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debSkip, OTHER_ARCH, tinyDeb, PACKAGE_POLICY } from '../../helpers/deb.js';
import {
  auditSince,
  bundleOn,
  copyMedia,
  ecluse,
  ecluseOk,
  expectImportRefused,
  flipByte,
  makeKeys,
  sha256,
  tmpDir,
  world,
  type Keys,
  type World,
} from '../../helpers/world.js';

/** Every file under `dir`, as `relative/path sha256`, sorted (empty when `dir` does not exist). */
function tree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => {
      const file = path.join(e.parentPath, e.name);
      return `${path.relative(dir, file)} ${sha256(fs.readFileSync(file))}`;
    })
    .sort();
}

interface Json {
  handedOver: { name: string; version: string; arch: string; sha256: string; deb: string; evidence: string } | null;
  images: Array<{ name: string }>;
}

describe.skipIf(debSkip !== null)('import hands écluse’s own package over to the installer', () => {
  let keys: Keys;
  let root: string;
  const worlds: World[] = [];
  beforeAll(async () => {
    root = tmpDir('ecluse-hand-over-');
    keys = await makeKeys(path.join(root, 'keys'));
  });
  afterAll(() => {
    for (const w of worlds) w.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
  });

  async function newWorld(policy = true): Promise<World> {
    const w = await world({ keys });
    worlds.push(w);
    if (policy) {
      fs.writeFileSync(w.path('policy.yaml'), PACKAGE_POLICY);
      await ecluseOk(['policy', 'apply', w.path('policy.yaml'), '--json'], { home: w.inside });
    }
    return w;
  }

  async function addPackage(w: World, version: string, arch?: string): Promise<string> {
    const deb = tinyDeb(w.root, { version, ...(arch ? { arch } : {}) });
    await ecluseOk(['relay', 'add', deb, '--type', 'ecluse-package', '--json'], { home: w.outside });
    return deb;
  }

  /** A spool for `w`; every import of `w` (expectImportRefused's too) hands over there. */
  function spool(w: World): string {
    const dir = w.path('spool', 'incoming');
    fs.mkdirSync(dir, { recursive: true, mode: 0o730 });
    w.importJson = (media, home) =>
      ecluse(['import', media, '--update-spool', dir, '--json'], { home: home ?? w.inside });
    return dir;
  }

  it('hands over the evidence and the package with the images, audited, in --json and in the receipt', async () => {
    const w = await newWorld();
    await w.addImage('debian-13', '20261101', 70_000);
    const deb = await addPackage(w, '0.2.0');
    const sum = sha256(fs.readFileSync(deb));
    const exported = (await w.exportTo(w.path('m1'))).json as { artifacts: Array<{ name: string; type: string }> };
    expect(exported.artifacts.map((a) => `${a.name} ${a.type}`)).toEqual([
      'debian-13 vm-image',
      'ecluse ecluse-package',
    ]);
    const dir = spool(w);
    // inspect names it; verify checks it and hands nothing over.
    const seen = await ecluseOk(['inspect', w.path('m1')]);
    expect(seen.stdout).toMatch(/artifact ecluse 0\.2\.0 \(écluse's own package for \w+,/);
    const verified = await ecluseOk(['verify', w.path('m1'), '--json'], { home: w.inside });
    expect(verified.json).toMatchObject({ handedOver: null });
    expect(fs.readdirSync(dir)).toEqual([]);
    const r = await ecluseOk(['import', w.path('m1'), '--update-spool', dir, '--json'], { home: w.inside });
    const j = r.json as Json;
    expect(j.images.map((i) => i.name)).toEqual(['debian-13']);
    expect(j.handedOver).toEqual({
      name: 'ecluse',
      version: '0.2.0',
      arch: expect.any(String),
      size: fs.statSync(deb).size,
      sha256: sum,
      deb: path.join(dir, `${sum}.deb`),
      evidence: path.join(dir, `${sum}.bundle`),
    });
    // Exactly the two names, no dot-file left; the package byte for byte; the evidence the bundle's own files.
    expect(fs.readdirSync(dir).sort()).toEqual([`${sum}.bundle`, `${sum}.deb`]);
    expect(fs.readFileSync(path.join(dir, `${sum}.deb`)).equals(fs.readFileSync(deb))).toBe(true);
    const b = bundleOn(w.path('m1'));
    const bundleFiles = ['signatures', 'certificates', 'trust'].flatMap((d) =>
      tree(path.join(b.root, d)).map((l) => `${d}/${l}`),
    );
    expect(bundleFiles.length).toBeGreaterThanOrEqual(2);
    expect(tree(path.join(dir, `${sum}.bundle`))).toEqual(bundleFiles.sort());
    // Nothing of it went to the image store.
    const images = fs.readdirSync(path.join(w.inside, 'store', 'images'));
    expect(images).toHaveLength(1);
    // Audited in the chain, in the same commit as the acceptance.
    const events = auditSince(w.inside).filter((e) => e.kind === 'update.handed-over' || e.kind === 'import.accepted');
    expect(events.map((e) => e.kind)).toEqual(['update.handed-over', 'import.accepted']);
    expect(events[0]).toMatchObject({ artifact: 'ecluse@0.2.0', bundle_id: b.id });
    expect(JSON.parse(events[0]?.details ?? '{}')).toMatchObject({ version: '0.2.0', sha256: sum });
    expect(events[1]?.message).toContain('ecluse 0.2.0 for the installer');
    // The receipt lists it: the export station knows it was delivered.
    await ecluseOk(['receipt', 'export', '--to', w.path('back1'), '--json'], { home: w.inside });
    const receiptDir = path.join(w.path('back1'), 'ecluse', 'receipts');
    const [file] = fs.readdirSync(receiptDir).filter((n) => !n.startsWith('.'));
    const env = JSON.parse(fs.readFileSync(path.join(receiptDir, file as string), 'utf8')) as {
      dsseEnvelope: { payload: string };
    };
    const receipt = JSON.parse(Buffer.from(env.dsseEnvelope.payload, 'base64').toString('utf8')) as {
      inventory: { artifacts: Array<{ name: string; version: string; sha256: string }> };
    };
    expect(receipt.inventory.artifacts).toContainEqual({ name: 'ecluse', version: '0.2.0', sha256: sum });
    // Human output names it too.
    await addPackage(w, '0.2.1');
    await w.exportTo(w.path('m2'));
    const human = await ecluseOk(['import', w.path('m2'), '--update-spool', dir], { home: w.inside });
    expect(human.stdout).toMatch(/ecluse 0\.2\.1 \(\w+\) handed over to the installer: .*\.deb$/m);

    // Refused: not newer than the newest handed over (no ecluse installed by dpkg here), the same version again.
    await addPackage(w, '0.1.9');
    await w.exportTo(w.path('m3'));
    const before = tree(dir);
    const old = await expectImportRefused(w, w.path('m3'), 'E_ROLLBACK');
    expect((old.json as { message: string }).message).toMatch(/ecluse 0\.1\.9 is not newer than 0\.2\.1/);
    expect(tree(dir)).toEqual(before);
  });

  it('refuses the package when the policy does not list the type (the default), handing nothing over', async () => {
    const w = await newWorld(false);
    await w.addImage('debian-13', '1', 10_000);
    await addPackage(w, '0.2.0');
    await w.exportTo(w.path('m1'));
    const dir = spool(w);
    const r = await expectImportRefused(w, w.path('m1'), 'E_NOT_ALLOWED');
    expect((r.json as { message: string }).message).toMatch(
      /ecluse 0\.2\.0 is not allowed: type ecluse-package is not admitted/,
    );
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('refuses a package for another architecture', async () => {
    const w = await newWorld();
    await addPackage(w, '0.2.0', OTHER_ARCH);
    await w.exportTo(w.path('m1'));
    const dir = spool(w);
    const r = await expectImportRefused(w, w.path('m1'), 'E_NOT_ALLOWED');
    expect(fs.readdirSync(dir)).toEqual([]);
    expect((r.json as { message: string }).message).toContain(`it is built for ${OTHER_ARCH} and this station runs on`);
  });

  it('hands nothing over when a byte of the package was changed on the media', async () => {
    const w = await newWorld();
    await w.addImage('debian-13', '1', 10_000);
    await addPackage(w, '0.2.0');
    await w.exportTo(w.path('m1'));
    const bad = copyMedia(w.path('m1'), w.path('m1-bad'));
    const vol = bundleOn(bad).volume(1);
    // The package is the last entry: its data ends just before the two zero blocks that end the volume.
    flipByte(vol, fs.statSync(vol).size - 1024 - 512 + 7);
    const dir = spool(w);
    const before = auditSince(w.inside).length;
    await expectImportRefused(w, bad, 'E_DIGEST');
    expect(fs.readdirSync(dir)).toEqual([]);
    expect(
      auditSince(w.inside)
        .slice(before)
        .some((e) => e.kind === 'update.handed-over'),
    ).toBe(false);
    // A spool that is not there: the whole bundle is refused (E_UPDATE naming the next step), no image promoted.
    w.importJson = (media, home) =>
      ecluse(['import', media, '--update-spool', w.path('no-such-spool'), '--json'], { home: home ?? w.inside });
    const missing = await expectImportRefused(w, w.path('m1'), 'E_UPDATE');
    expect((missing.json as { message: string }).message).toMatch(
      /could not be handed over in .*no-such-spool: .*--update-spool DIR\), then import again/,
    );
    spool(w);
    // The genuine media still goes through.
    await ecluseOk(['import', w.path('m1'), '--update-spool', dir, '--json'], { home: w.inside });
    expect(fs.readdirSync(dir)).toHaveLength(2);
  });
});
