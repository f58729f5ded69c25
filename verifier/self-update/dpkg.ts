/**
 * What dpkg says, asked through its own commands (never a hand-written copy of its rules): the order of two Debian
 * versions (`dpkg --compare-versions`) and the version of écluse installed here (`dpkg-query -W`). No npm package
 * was taken for the comparison: the one that exists (deb-version-compare) has had a single release and little use,
 * and the import station is a Debian system with dpkg anyway.
 */
import { spawnSync } from 'node:child_process';
import { EcluseError } from '../../sneakernet/errors.js';
import { ECLUSE_PACKAGE_NAME } from '../../sneakernet/ecluse-package.js';

const ENV = { ...process.env, LC_ALL: 'C' };

/** Whether Debian version `a` is strictly newer than `b`, as dpkg orders them. */
export function debianNewer(a: string, b: string): boolean {
  const r = spawnSync('dpkg', ['--compare-versions', a, 'gt', b], { encoding: 'utf8', env: ENV, timeout: 30_000 });
  if (r.error) {
    throw new EcluseError(
      'E_INPUT',
      `dpkg is needed to compare package versions (${r.error.message}): install it (apt-get install dpkg)`,
      { check: 'rollback' },
    );
  }
  if (r.status === 0) return true;
  if (r.status === 1) return false;
  throw new EcluseError(
    'E_INPUT',
    `dpkg cannot compare the versions ${a} and ${b}: ${r.stderr.trim().split('\n').pop() ?? ''}`,
    { check: 'rollback' },
  );
}

/**
 * The version of the ecluse package dpkg has installed here, or null when dpkg or the package is absent (a
 * development machine, the tests): the caller then compares with what the station itself accepted.
 */
export function installedEcluseVersion(): string | null {
  const r = spawnSync('dpkg-query', ['-W', '-f', '${Status}\t${Version}', ECLUSE_PACKAGE_NAME], {
    encoding: 'utf8',
    env: ENV,
    timeout: 30_000,
  });
  if (r.error || r.status !== 0) return null;
  const [status = '', version = ''] = r.stdout.split('\t');
  return / installed$/.test(status.trim()) && version.trim() !== '' ? version.trim() : null;
}
