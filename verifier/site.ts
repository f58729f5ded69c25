/**
 * The import station's site: its id, the number of distinct signers a bundle needs, and the pinned trust anchors
 * installed once by `ecluse site init`.
 */
import fs from 'node:fs';
import { EcluseError } from '../sneakernet/errors.js';
import { installTrust, loadTrustAnchors, type TrustAnchors } from '../keys/trust.js';
import { appendAudit } from './audit.js';
import { migrateAcceptedState } from './accepted-state.js';
import { migrateHandOvers } from './self-update/packages.js';
import { rotatedAnchors } from './root-updates.js';
import { getSetting, openDb, setSetting, type Db } from './db.js';
import { importHome, type ImportHome } from './home.js';

export interface Site {
  home: ImportHome;
  db: Db;
  siteId: string;
  threshold: number;
  anchors: TrustAnchors;
}

const SITE_ID = /^[A-Za-z0-9][A-Za-z0-9._+:~-]{0,254}$/;

export function initSite(root: string, o: { trustDir: string; site: string; threshold: number }): Site {
  if (!SITE_ID.test(o.site))
    throw new EcluseError('E_USAGE', `invalid site id "${o.site}" (letters, digits, . _ + : ~ -)`);
  if (!Number.isInteger(o.threshold) || o.threshold < 1 || o.threshold > 16) {
    throw new EcluseError('E_USAGE', 'the threshold must be a whole number from 1 to 16');
  }
  const home = importHome(root);
  const db = openDb(root);
  const existing = getSetting(db, 'site_id');
  if (existing) {
    db.close();
    throw new EcluseError(
      'E_ALREADY_INITIALIZED',
      `${root} is already the import station of site ${existing}; nothing was changed (see "ecluse site show"; to set up another site, give another --home)`,
      { check: 'site' },
    );
  }
  const anchors = installTrust(o.trustDir, home.trust);
  migrateAcceptedState(db);
  migrateHandOvers(db);
  for (const dir of [home.images, home.staging]) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  db.transaction(() => {
    setSetting(db, 'site_id', o.site);
    setSetting(db, 'threshold', String(o.threshold));
    appendAudit(db, {
      kind: 'site.init',
      outcome: 'info',
      message: `site ${o.site} set up: root key ${anchors.rootKeyId.slice(0, 12)}, ${o.threshold} signer(s) required`,
      details: { site: o.site, threshold: o.threshold, rootKeyId: anchors.rootKeyId, rootVersion: anchors.rootVersion },
    });
  })();
  return { home, db, siteId: o.site, threshold: o.threshold, anchors };
}

export function openSite(root: string): Site {
  const home = importHome(root);
  if (!fs.existsSync(home.trust)) {
    throw new EcluseError(
      'E_NOT_INITIALIZED',
      `${root} is not an import station yet: run "ecluse site init --trust KEYDIR/trust --site SITE_ID"`,
    );
  }
  const db = openDb(root);
  const siteId = getSetting(db, 'site_id');
  if (!siteId) throw new EcluseError('E_NOT_INITIALIZED', `${root} has no site id: run "ecluse site init"`);
  migrateAcceptedState(db);
  migrateHandOvers(db);
  for (const dir of [home.images, home.staging]) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return {
    home,
    db,
    siteId,
    threshold: Number(getSetting(db, 'threshold') ?? '1'),
    // The root pinned at install, or a newer one pinned since by a verified rotation.
    anchors: rotatedAnchors(db, loadTrustAnchors(home.trust)),
  };
}
