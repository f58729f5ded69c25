/**
 * The site's Keystone, as the Glance API uses it to validate its users' tokens (`ecluse site keystone`): the identity
 * URL, the station's service user (password or application credential, the secret in a file read at each service
 * login, never stored here), and how long a validated token is trusted before Keystone is asked again.
 *
 * Stored as one JSON setting (`glance_keystone`). `keystoneSettings()` is what `ecluse site show` prints: it holds
 * no secret, only where the secret is read from.
 */
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { appendAudit } from '../audit.js';
import { getSetting, setSetting, type Db } from '../db.js';

const SETTING = 'glance_keystone';

/** Revocation is honoured within this long: a validated token is not asked about again before it has passed. */
export const DEFAULT_CACHE_SECONDS = 30;
export const MAX_CACHE_SECONDS = 60;

const NAME = z.string().min(1).max(255);

export const keystoneSettingsSchema = z.strictObject({
  url: z
    .string()
    .max(2048)
    .refine((u) => /^https?:\/\//i.test(u) && URL.canParse(u), 'an http(s) URL'),
  /** Password login of the service user (with `passwordFile`), or an application credential. */
  user: NAME.optional(),
  userDomain: NAME.default('Default'),
  passwordFile: z.string().min(1).max(4096).optional(),
  project: NAME.optional(),
  projectDomain: NAME.default('Default'),
  appCredentialId: NAME.optional(),
  appCredentialSecretFile: z.string().min(1).max(4096).optional(),
  cacheSeconds: z.number().int().min(0).max(MAX_CACHE_SECONDS).default(DEFAULT_CACHE_SECONDS),
});

export type KeystoneSettings = z.infer<typeof keystoneSettingsSchema>;
export type KeystoneSettingsInput = z.input<typeof keystoneSettingsSchema>;

/** Either a password login (user, password file, project) or an application credential (id, secret file). */
function checkComplete(s: KeystoneSettings): void {
  const password = s.user !== undefined || s.passwordFile !== undefined || s.project !== undefined;
  const appCred = s.appCredentialId !== undefined || s.appCredentialSecretFile !== undefined;
  if (password && appCred) {
    throw new EcluseError(
      'E_USAGE',
      'give either --user/--password-file/--project or --app-credential-id/--app-credential-secret-file, not both',
    );
  }
  if (appCred && (s.appCredentialId === undefined || s.appCredentialSecretFile === undefined)) {
    throw new EcluseError(
      'E_USAGE',
      'an application credential needs both --app-credential-id and --app-credential-secret-file',
    );
  }
  if (!appCred && (s.user === undefined || s.passwordFile === undefined || s.project === undefined)) {
    throw new EcluseError(
      'E_USAGE',
      'the service user needs --user, --password-file and --project (or an application credential)',
    );
  }
}

export function parseKeystoneSettings(input: unknown): KeystoneSettings {
  const r = keystoneSettingsSchema.safeParse(input);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new EcluseError('E_USAGE', `Keystone settings: ${i?.path.join('.') || 'value'}: ${i?.message ?? 'invalid'}`);
  }
  checkComplete(r.data);
  return r.data;
}

/** The site's Keystone settings (no secret in them), or null when the Glance API does not use Keystone. */
export function keystoneSettings(db: Db): KeystoneSettings | null {
  const raw = getSetting(db, SETTING);
  if (raw === undefined || raw === '') return null;
  try {
    return parseKeystoneSettings(JSON.parse(raw));
  } catch {
    throw new EcluseError(
      'E_INPUT',
      `the stored Keystone settings are unreadable: set them again with "ecluse site keystone"`,
    );
  }
}

/** Records the site's Keystone (or removes it with null), audited. */
export function setKeystoneSettings(db: Db, s: KeystoneSettings | null): void {
  db.transaction(() => {
    setSetting(db, SETTING, s === null ? '' : JSON.stringify(s));
    appendAudit(db, {
      kind: 'site.keystone',
      outcome: 'info',
      message:
        s === null
          ? 'the Glance API no longer validates Keystone tokens'
          : `the Glance API validates Keystone tokens at ${s.url} as ${s.appCredentialId ? `application credential ${s.appCredentialId}` : `${s.user}@${s.userDomain} in project ${s.project}`} (answers cached ${s.cacheSeconds} s)`,
      details: s === null ? { keystone: null } : { keystone: s },
    });
  })();
}
