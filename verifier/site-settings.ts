/**
 * The import station's settings an operator may change after `site init` (`ecluse site set KEY VALUE`, audited), and
 * what `ecluse site show` reports: the site id, the root pinned now (installed or reached by rotation), the revocation
 * list in force, the policy in force and every setting with its value and default. The site id is fixed at `site init`;
 * the trust anchors change only by a verified root rotation; the policy by `ecluse policy apply`.
 */
import { EcluseError } from '../sneakernet/errors.js';
import { loadTrustAnchors } from '../keys/trust.js';
import type { RevocationList } from '../keys/revocation.js';
import { appendAudit } from './audit.js';
import { getSetting, setSetting } from './db.js';
import { activePolicy } from './policy/store.js';
import type { Site } from './site.js';

interface SettingSpec {
  meaning: string;
  /** The values it takes, as the help and the refusal say them. */
  values: string;
  default: string;
  /** The normalised value, or null when `value` is not one it takes. */
  parse(value: string): string | null;
}

export const SITE_SETTINGS = {
  threshold: {
    meaning: 'distinct trusted signers a bundle needs (m of n)',
    values: 'a whole number from 1 to 16',
    default: '1',
    parse: (v) => (/^[0-9]{1,2}$/.test(v) && Number(v) >= 1 && Number(v) <= 16 ? String(Number(v)) : null),
  },
  glance_bundle_images: {
    meaning: 'whether images that came in a bundle may be changed or deleted through the Glance API',
    values: 'read-only or writable',
    default: 'read-only',
    parse: (v) => (v === 'read-only' || v === 'writable' ? v : null),
  },
  registry_anonymous_pulls: {
    meaning:
      'who may pull from the container registry (serve --registry-listen) without a token: loopback clients (as the Glance API; nobody at a Keystone site), anyone, or nobody',
    values: 'loopback, anyone or none',
    default: 'loopback',
    parse: (v) => (v === 'loopback' || v === 'anyone' || v === 'none' ? v : null),
  },
} as const satisfies Record<string, SettingSpec>;

export type SiteSettingKey = keyof typeof SITE_SETTINGS;
const KEYS = Object.keys(SITE_SETTINGS) as SiteSettingKey[];

export interface SettingView {
  key: SiteSettingKey;
  value: string;
  default: string;
  values: string;
  meaning: string;
}

export interface SiteView {
  site: string;
  home: string;
  root: {
    version: number;
    keyId: string;
    notAfter: string;
    installedVersion: number;
    pinnedBy: 'site init' | 'rotation';
  };
  threshold: number;
  revocations: {
    version: number;
    issued: string;
    revoked: Array<{ name: string; keyId: string; revokedAt: string; reason: string }>;
  } | null;
  policy: { source: string; digest: string };
  settings: SettingView[];
}

function settingValue(site: Site, key: SiteSettingKey): string {
  return getSetting(site.db, key) ?? SITE_SETTINGS[key].default;
}

export function siteView(site: Site): SiteView {
  const installed = loadTrustAnchors(site.home.trust);
  const heldList = getSetting(site.db, 'revocations');
  const list = heldList ? (JSON.parse(heldList) as RevocationList) : null;
  const policy = activePolicy(site.db);
  return {
    site: site.siteId,
    home: site.home.root,
    root: {
      version: site.anchors.rootVersion,
      keyId: site.anchors.rootKeyId,
      notAfter: new Date(site.anchors.root.validTo).toISOString(),
      installedVersion: installed.rootVersion,
      pinnedBy: site.anchors.rootVersion > installed.rootVersion ? 'rotation' : 'site init',
    },
    threshold: site.threshold,
    revocations: list
      ? {
          version: list.version,
          issued: list.issued,
          revoked: list.revoked.map((r) => ({
            name: r.name,
            keyId: r.keyId,
            revokedAt: r.revokedAt,
            reason: r.reason,
          })),
        }
      : null,
    policy: { source: policy.source, digest: policy.digest },
    settings: KEYS.map((key) => ({
      key,
      value: settingValue(site, key),
      default: SITE_SETTINGS[key].default,
      values: SITE_SETTINGS[key].values,
      meaning: SITE_SETTINGS[key].meaning,
    })),
  };
}

/** Changes one setting (audited); `changed` is false when it already had that value (nothing is written). */
export function setSiteSetting(
  site: Site,
  key: string,
  value: string,
): { key: SiteSettingKey; from: string; to: string; changed: boolean } {
  if (key === 'site_id' || key === 'site') {
    throw new EcluseError(
      'E_USAGE',
      'the site id is fixed at "ecluse site init"; to serve another site, set up another --home',
    );
  }
  if (!(KEYS as string[]).includes(key)) {
    throw new EcluseError(
      'E_USAGE',
      `"${key}" is not a site setting: the settings are ${KEYS.join(', ')} (see "ecluse site show")`,
    );
  }
  const k = key as SiteSettingKey;
  const spec: SettingSpec = SITE_SETTINGS[k];
  const to = spec.parse(value.trim());
  if (to === null) throw new EcluseError('E_USAGE', `${k} takes ${spec.values}, not "${value}"`);
  const from = settingValue(site, k);
  if (from === to) return { key: k, from, to, changed: false };
  site.db.transaction(() => {
    setSetting(site.db, k, to);
    appendAudit(site.db, {
      kind: 'site.setting',
      outcome: 'info',
      message: `site setting ${k} changed from ${from} to ${to}`,
      details: { key: k, from, to },
    });
  })();
  if (k === 'threshold') site.threshold = Number(to);
  return { key: k, from, to, changed: true };
}
