/**
 * The control fields of a Debian package, read with the real `dpkg-deb -f` (never parsed by hand from the ar/tar
 * archive): what `relay add --type ecluse-package` signs and what `ecluse self-update check` compares with the
 * signed statement. The file is not trusted: dpkg-deb refuses what is not a package, and each field is bounded.
 */
import { execFile } from 'node:child_process';
import { EcluseError } from './errors.js';
import { checkId } from './check-ids.js';

export interface DebFields {
  package: string;
  version: string;
  architecture: string;
  /** `Depends:` as written, or '' when the package has none. */
  depends: string;
}

const FIELDS = ['Package', 'Version', 'Architecture', 'Depends'] as const;
/** A control file is small; anything beyond this is not one of ours. */
const MAX_OUTPUT = 64 * 1024;

function run(file: string): Promise<{ stdout: string; stderr: string; code: number | string | null }> {
  return new Promise((resolve) => {
    execFile(
      'dpkg-deb',
      ['-f', '--', file, ...FIELDS],
      { encoding: 'utf8', maxBuffer: MAX_OUTPUT, env: { ...process.env, LC_ALL: 'C' } },
      (err, stdout, stderr) => {
        const code = err ? ((err as NodeJS.ErrnoException).code ?? 1) : 0;
        resolve({ stdout, stderr, code });
      },
    );
  });
}

/**
 * `Package`, `Version`, `Architecture` and `Depends` of `file` (`what` names it in errors). Not a Debian package:
 * E_INPUT with dpkg-deb's reason; dpkg-deb missing: E_INPUT naming the Debian package that has it.
 */
export async function readDebFields(file: string, what: string): Promise<DebFields> {
  const r = await run(file);
  if (r.code === 'ENOENT') {
    throw new EcluseError('E_INPUT', `dpkg-deb is needed to read ${what}: install it (apt-get install dpkg)`, {
      check: checkId('input-file'),
    });
  }
  if (r.code !== 0) {
    // dpkg-deb prefixes its own name ("dpkg-deb: error: ..."): said once, by the message below.
    const why = (r.stderr.trim().split('\n').pop() ?? '').replace(/^dpkg-deb: /, '');
    throw new EcluseError('E_INPUT', `${what} is not a Debian package (dpkg-deb: ${why.slice(0, 300)})`, {
      check: checkId('input-file'),
    });
  }
  const fields = new Map<string, string>();
  let last: string | null = null;
  for (const line of r.stdout.split('\n')) {
    if (/^\s/.test(line) && last !== null) {
      fields.set(last, `${fields.get(last) ?? ''} ${line.trim()}`);
      continue;
    }
    const m = /^([A-Za-z][A-Za-z0-9-]*):\s?(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) {
      last = m[1];
      fields.set(m[1], m[2].trim());
    }
  }
  const field = (name: string) => fields.get(name) ?? '';
  if (!field('Package') || !field('Version') || !field('Architecture')) {
    throw new EcluseError(
      'E_INPUT',
      `${what} is not a Debian package: its control file lacks Package, Version or Architecture`,
      {
        check: checkId('input-file'),
      },
    );
  }
  return {
    package: field('Package'),
    version: field('Version'),
    architecture: field('Architecture'),
    depends: field('Depends'),
  };
}
