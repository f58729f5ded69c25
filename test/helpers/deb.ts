/**
 * Tiny Debian packages built by the tests with the real `dpkg-deb --build` (a control file and one small file), to
 * stand in for écluse's own package (docs/FORMAT.md 4.10) without building the real one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stationArch } from '../../sneakernet/ecluse-package.js';
import { which } from './media.js';

export const debSkip: string | null = which('dpkg-deb') ? null : 'dpkg-deb is missing';

/** The Debian architecture of this machine, and one it is not. */
export const HERE_ARCH = stationArch() ?? 'amd64';
export const OTHER_ARCH = HERE_ARCH === 'amd64' ? 'arm64' : 'amd64';

/** A site policy that admits VM images and écluse's own package (docs/FORMAT.md 4.10: `types` must name it). */
export const PACKAGE_POLICY = `version: 1
rules:
  - name: everything
    artifacts: ["*"]
    types: [vm-image, ecluse-package]
`;

export interface DebSpec {
  pkg?: string;
  version: string;
  arch?: string;
  depends?: string;
  /** Bytes of a payload file, so that two packages differ in more than their control file. */
  payload?: string;
}

export function tinyDeb(dir: string, spec: DebSpec): string {
  const pkg = spec.pkg ?? 'ecluse';
  const arch = spec.arch ?? HERE_ARCH;
  const root = fs.mkdtempSync(path.join(dir, `${pkg}-${spec.version}-`));
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr', 'share', 'doc', pkg), { recursive: true });
  fs.writeFileSync(path.join(root, 'usr', 'share', 'doc', pkg, 'README'), spec.payload ?? `${pkg} ${spec.version}\n`);
  fs.writeFileSync(
    path.join(root, 'DEBIAN', 'control'),
    [
      `Package: ${pkg}`,
      `Version: ${spec.version}`,
      `Architecture: ${arch}`,
      'Maintainer: tests <tests@localhost>',
      ...(spec.depends === undefined
        ? ['Depends: nodejs (>= 20.19), nodejs (<< 21)']
        : spec.depends
          ? [`Depends: ${spec.depends}`]
          : []),
      'Description: test package',
      '',
    ].join('\n'),
  );
  const out = path.join(dir, `${pkg}_${spec.version}_${arch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '--build', root, out], { stdio: 'ignore' });
  fs.rmSync(root, { recursive: true, force: true });
  return out;
}
