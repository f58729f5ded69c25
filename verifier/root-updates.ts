/**
 * Root rotation at the import station (docs/FORMAT.md section 6, step 3r): root documents arriving on the media are
 * followed from the root in force here (keys/root-rotation.ts). `followRoots` only verifies and returns the chain of
 * newer roots; `pinRoots` pins the newest in the database, with one audit line per root, in one transaction, so it
 * applies from then on, whatever the fate of the bundle that carried it. `verify` follows without pinning.
 */
import crypto from 'node:crypto';
import { keyIdOf } from '../keys/keyid.js';
import { verifyRootChain } from '../keys/root-rotation.js';
import type { TrustAnchors } from '../keys/trust.js';
import { appendAudit } from './audit.js';
import { getSetting, setSetting, type Db } from './db.js';

/** The newest root pinned by rotation, if it is newer than the installed trust folder's. */
export function rotatedAnchors(db: Db, installed: TrustAnchors): TrustAnchors {
  const pem = getSetting(db, 'root_pem');
  const version = Number(getSetting(db, 'root_version') ?? '0');
  if (!pem || version <= installed.rootVersion) return installed;
  const root = new crypto.X509Certificate(pem);
  return { root, rootKeyId: keyIdOf(root.publicKey), rootVersion: version };
}

/** The newer roots the documents prove, oldest first (empty when none): each signed by its predecessor and itself. */
export function followRoots(anchors: TrustAnchors, documents: ReadonlyMap<string, Buffer>, at: Date): TrustAnchors[] {
  if (documents.size === 0) return [];
  return verifyRootChain(documents, anchors, at);
}

/** Pins the newest root of `chain` and audits each; nothing when the chain is empty. */
export function pinRoots(db: Db, chain: readonly TrustAnchors[], media: string): void {
  const newest = chain[chain.length - 1];
  if (!newest) return;
  db.transaction(() => {
    setSetting(db, 'root_pem', newest.root.toString());
    setSetting(db, 'root_version', String(newest.rootVersion));
    for (const a of chain) {
      appendAudit(db, {
        kind: 'trust.root-rotated',
        outcome: 'info',
        message: `site root version ${a.rootVersion} pinned (key ${a.rootKeyId.slice(0, 12)}), signed by the previous root and by itself`,
        media,
        details: { version: a.rootVersion, rootKeyId: a.rootKeyId },
      });
    }
  })();
}
