/**
 * Where a private key's passphrase comes from: the `ECLUSE_PASSPHRASE` environment variable if set, else a prompt on
 * the terminal (nothing echoed) when stdin is a TTY, else a refusal (E_PASSPHRASE). `--no-passphrase` (passed in as
 * `noPassphrase: true`) yields `null`: keys are then written unencrypted and the caller must warn loudly.
 */
import { EcluseError } from '../sneakernet/errors.js';
import { checkId } from '../sneakernet/check-ids.js';

/** The environment variable that supplies the passphrase to scripts and services. */
export const PASSPHRASE_ENV = 'ECLUSE_PASSPHRASE';

/** The new passphrase of `ecluse keys passwd`, for scripts. */
export const NEW_PASSPHRASE_ENV = 'ECLUSE_NEW_PASSPHRASE';

/** One signer's own passphrase variable (`ECLUSE_PASSPHRASE_ALICE`), tried before ECLUSE_PASSPHRASE. */
export function signerPassphraseEnv(name: string): string {
  return `${PASSPHRASE_ENV}_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * The shortest passphrase that may encrypt a new key. The key files travel on offline media that can be lost or
 * copied; what protects them then is the passphrase against an offline guessing attack (scrypt slows each guess, it
 * cannot save a short one), so 12 characters is the floor.
 */
export const MIN_PASSPHRASE_LENGTH = 12;

/** Refuses a passphrase too short to encrypt a new key, saying why. */
export function checkNewPassphrase(passphrase: string, purpose: string, source: string): void {
  const length = [...passphrase].length;
  if (length >= MIN_PASSPHRASE_LENGTH) return;
  throw new EcluseError(
    'E_PASSPHRASE',
    `the passphrase for ${purpose} (${source}) has ${length} character(s); use at least ${MIN_PASSPHRASE_LENGTH}: ` +
      'a lost or copied key file is protected only by its passphrase against offline guessing',
    { check: checkId('passphrase-length') },
  );
}

export interface ResolvePassphraseOptions {
  /** True when the operator chose `--no-passphrase`. */
  noPassphrase: boolean;
  /** What the passphrase is for, shown in the prompt and in errors, e.g. "the site root key". */
  purpose: string;
  /**
   * A new key is being encrypted: ask twice and require both answers to match (not for the env var), and require
   * MIN_PASSPHRASE_LENGTH characters (also from the env var).
   */
  confirm?: boolean;
  /** The environment variables tried, in order, before the terminal (default: ECLUSE_PASSPHRASE). */
  env?: readonly string[];
}

export async function resolvePassphrase(opts: ResolvePassphraseOptions): Promise<string | null> {
  if (opts.noPassphrase) return null;
  const names = opts.env ?? [PASSPHRASE_ENV];
  for (const name of names) {
    const fromEnv = process.env[name];
    if (fromEnv === undefined) continue;
    if (fromEnv === '')
      throw new EcluseError('E_PASSPHRASE', `${name} is set but empty`, { check: checkId('passphrase') });
    if (opts.confirm) checkNewPassphrase(fromEnv, opts.purpose, name);
    return fromEnv;
  }
  if (!process.stdin.isTTY) {
    throw new EcluseError(
      'E_PASSPHRASE',
      `a passphrase is needed for ${opts.purpose}: set ${names.join(' or ')} or run from a terminal`,
      { check: checkId('passphrase') },
    );
  }
  const first = await promptHidden(`Passphrase for ${opts.purpose}: `);
  if (first === '') {
    throw new EcluseError('E_PASSPHRASE', `an empty passphrase was given for ${opts.purpose}`, {
      check: checkId('passphrase'),
    });
  }
  if (opts.confirm) {
    checkNewPassphrase(first, opts.purpose, 'typed');
    const again = await promptHidden(`Repeat the passphrase for ${opts.purpose}: `);
    if (again !== first) {
      throw new EcluseError('E_PASSPHRASE', `the two passphrases for ${opts.purpose} differ`, {
        check: checkId('passphrase'),
      });
    }
  }
  return first;
}

/** Reads one line from the TTY on stdin in raw mode, echoing nothing; the prompt goes to stderr. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let answer = '';
    const done = (err: EcluseError | null) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(answer);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(null);
        if (ch === '\u0003' || ch === '\u0004') {
          return done(
            new EcluseError('E_PASSPHRASE', 'the passphrase prompt was interrupted', { check: checkId('passphrase') }),
          );
        }
        if (ch === '\u007f' || ch === '\b') answer = [...answer].slice(0, -1).join('');
        else if (ch >= ' ') answer += ch;
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}
