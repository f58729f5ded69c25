/**
 * The revocation list in force at the import station. A list arriving on the media is accepted only when signed by
 * the pinned root and newer than the one held; it is recorded (and audited) in its own transaction, so it applies
 * from that moment even if the bundle that carried it is refused. `verify` uses it without recording it.
 */
import { verifyRevocationList, type RevocationList } from '../keys/revocation.js';
import { appendAudit } from './audit.js';
import { getSetting, setSetting } from './db.js';
import type { Site } from './site.js';

function held(site: Site): RevocationList | null {
  const text = getSetting(site.db, 'revocations');
  return text ? (JSON.parse(text) as RevocationList) : null;
}

/** Key id → what to tell the operator, for every key revoked by the list in force (after `incoming`, if newer). */
export function revokedKeys(
  site: Site,
  incoming: Buffer | null,
  o: { record: boolean; media: string },
): Map<string, string> {
  let list = held(site);
  if (incoming) {
    const offered = verifyRevocationList(incoming, site.anchors);
    if (!list || offered.version > list.version) {
      list = offered;
      if (o.record) {
        site.db.transaction(() => {
          setSetting(site.db, 'revocations', JSON.stringify(offered));
          appendAudit(site.db, {
            kind: 'trust.revocations',
            outcome: 'info',
            message: `revocation list version ${offered.version} accepted: ${offered.revoked.map((r) => r.name).join(', ') || 'none'} revoked`,
            media: o.media,
            details: { version: offered.version, revoked: offered.revoked },
          });
        })();
      }
    }
  }
  return new Map(
    (list?.revoked ?? []).map((r) => [
      r.keyId,
      `signer ${r.name}, revoked on ${r.revokedAt}${r.reason ? ` (${r.reason})` : ''}`,
    ]),
  );
}
