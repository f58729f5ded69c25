/**
 * `ecluse relay add FILE.deb --type ecluse-package` (docs/FORMAT.md 4.10), through the CLI from dist/: name, version,
 * architecture and Node range come from the package itself (real dpkg-deb); a file that is not a package, a package
 * not named ecluse, or --name/--version that contradict it are refused; `relay list` says what it is.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { debSkip, HERE_ARCH, tinyDeb } from '../helpers/deb.js';
import { ecluse, ecluseOk, expectFailureOutput, sha256, tmpDir } from '../helpers/world.js';

describe.skipIf(debSkip !== null)('relay add --type ecluse-package', () => {
  let dir: string;
  let home: string;
  beforeAll(() => {
    dir = tmpDir('ecluse-add-package-');
    home = path.join(dir, 'outside');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('adds the package with what dpkg-deb reads from it, and relay list shows it', async () => {
    const deb = tinyDeb(dir, { version: '0.2.0+site1' });
    const r = await ecluseOk(['relay', 'add', deb, '--type', 'ecluse-package', '--json'], { home });
    expect(r.json).toMatchObject({
      created: true,
      artifact: {
        name: 'ecluse',
        version: '0.2.0+site1',
        type: 'ecluse-package',
        size: fs.statSync(deb).size,
        sha256: sha256(fs.readFileSync(deb)),
        package: { arch: HERE_ARCH, node: '>= 20.19, << 21' },
      },
    });
    // The same file again is a no-op; --name and --version that say what the package says are accepted.
    const again = await ecluseOk(
      ['relay', 'add', deb, '--type', 'ecluse-package', '--name', 'ecluse', '--version', '0.2.0+site1', '--json'],
      { home },
    );
    expect(again.json).toMatchObject({ created: false });
    const list = await ecluseOk(['relay', 'list', '--json'], { home });
    expect(list.json).toMatchObject({
      artifacts: [{ name: 'ecluse', version: '0.2.0+site1', type: 'ecluse-package' }],
    });
    const human = await ecluseOk(['relay', 'list'], { home });
    expect(human.stdout).toMatch(/^ecluse 0\.2\.0\+site1 {2}écluse's own package/m);
  });

  it('refuses a file that is not a Debian package (E_INPUT, naming dpkg-deb)', async () => {
    const junk = path.join(dir, 'junk.deb');
    fs.writeFileSync(junk, 'this is not an ar archive');
    const r = await ecluse(['relay', 'add', junk, '--type', 'ecluse-package', '--json'], { home });
    expect(r.code).toBe(3);
    expect(expectFailureOutput(r, 'E_INPUT').message).toMatch(/junk\.deb is not a Debian package \(dpkg-deb: /);
  });

  it('refuses a package not named ecluse', async () => {
    const other = tinyDeb(dir, { pkg: 'notecluse', version: '1.0' });
    const r = await ecluse(['relay', 'add', other, '--type', 'ecluse-package', '--json'], { home });
    expect(r.code).toBe(3);
    expect(expectFailureOutput(r, 'E_INPUT').message).toMatch(/is the Debian package "notecluse", not écluse's own/);
  });

  it('refuses --version or --name that contradict the package, and an unknown --type', async () => {
    const deb = tinyDeb(dir, { version: '0.3.0' });
    const v = await ecluse(['relay', 'add', deb, '--type', 'ecluse-package', '--version', '0.3.1', '--json'], { home });
    expect(v.code).toBe(2);
    expect(expectFailureOutput(v, 'E_USAGE').message).toMatch(
      /--version 0\.3\.1 is not the package's version \(0\.3\.0\)/,
    );
    const n = await ecluse(['relay', 'add', deb, '--type', 'ecluse-package', '--name', 'other', '--json'], { home });
    expect(expectFailureOutput(n, 'E_USAGE').message).toMatch(/--name other is not the package's name/);
    const t = await ecluse(['relay', 'add', deb, '--type', 'deb', '--json'], { home });
    expect(expectFailureOutput(t, 'E_USAGE').message).toMatch(/--type deb is not one of vm-image, ecluse-package/);
    const list = await ecluseOk(['relay', 'list', '--json'], { home });
    expect((list.json as { artifacts: Array<{ version: string }> }).artifacts.map((a) => a.version)).not.toContain(
      '0.3.0',
    );
  });
});
