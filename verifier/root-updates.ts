/**
 * Root rotation at the import station: root documents arriving on the media are followed from the root pinned here
 * (keys/root-rotation.ts). Each newer root that verifies is pinned in the database, with its audit line, in one
 * transaction, and applies at once, whatever the fate of the bundle that carried it. `verify` uses them in memory.
 */
import crypto from 'node:crypto';
import { keyIdOf } from '../keys/keyid.js';
import { verifyRootChain } from '../keys/root-rotation.js';
import type { TrustAnchors } from '../keys/trust.js';
import { appendAudit } from './audit.js';
import { getSetting, setSetting, type Db } from './db.js';
import type { Site } from './site.js';

/** The newest root pinned by rotation, if it is newer than the installed trust folder's. */
export function rotatedAnchors(db: Db, installed: TrustAnchors): TrustAnchors {
  const pem = getSetting(db, 'root_pem');
  const version = Number(getSetting(db, 'root_version') ?? '0');
  if (!pem || version <= installed.rootVersion) return installed;
  const root = new crypto.X509Certificate(pem);
  return { root, rootKeyId: keyIdOf(root.publicKey), rootVersion: version };
}

/** Follows the root documents of a bundle; updates `site.anchors` (and, when recording, the database). */
export function applyRootRotations(
  site: Site,
  documents: ReadonlyMap<string, Buffer>,
  o: { record: boolean; media: string; at: Date },
): void {
  if (documents.size === 0) return;
  const chain = verifyRootChain(documents, site.anchors, o.at);
  const newest = chain[chain.length - 1];
  if (!newest) return;
  if (o.record) {
    site.db.transaction(() => {
      setSetting(site.db, 'root_pem', newest.root.toString());
      setSetting(site.db, 'root_version', String(newest.rootVersion));
      for (const a of chain) {
        appendAudit(site.db, {
          kind: 'trust.root-rotated',
          outcome: 'info',
          message: `site root version ${a.rootVersion} pinned (key ${a.rootKeyId.slice(0, 12)}), signed by the previous root and by itself`,
          media: o.media,
          details: { version: a.rootVersion, rootKeyId: a.rootKeyId },
        });
      }
    })();
  }
  site.anchors = newest;
}
