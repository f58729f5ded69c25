/**
 * Root rotation at the import station: root documents arriving on the media are followed from the root pinned here
 * (keys/root-rotation.ts). Each newer root that verifies is pinned in the database, with its audit line, in one
 * transaction, and applies at once, whatever the fate of the bundle that carried it. `verify` uses them in memory.
 */
import { verifyRootChain } from '../keys/root-rotation.js';
import { appendAudit } from './audit.js';
import { setSetting } from './db.js';
import type { Site } from './site.js';

export { rotatedAnchors } from './pinned-root.js';

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
