/**
 * The revocation list in force at the import station (docs/FORMAT.md section 6, step 3r). A list arriving on the
 * media is taken only when signed by the root in force and newer than the one held (`offeredRevocations`, which
 * records nothing); `adoptRevocations` records (and audits) it in its own transaction, so it applies from that
 * moment even if the bundle that carried it is refused. `verify` uses it without adopting it.
 */
import { verifyRevocationList, type RevocationList } from '../keys/revocation.js';
import type { TrustAnchors } from '../keys/trust.js';
import { appendAudit } from './audit.js';
import { getSetting, setSetting, type Db } from './db.js';

export function heldRevocations(db: Db): RevocationList | null {
  const text = getSetting(db, 'revocations');
  return text ? (JSON.parse(text) as RevocationList) : null;
}

/** The list on the media when it verifies against `anchors` and is newer than `held`; otherwise null. */
export function offeredRevocations(
  held: RevocationList | null,
  incoming: Buffer | null,
  anchors: TrustAnchors,
): RevocationList | null {
  if (!incoming) return null;
  const offered = verifyRevocationList(incoming, anchors);
  return !held || offered.version > held.version ? offered : null;
}

export function adoptRevocations(db: Db, list: RevocationList, media: string): void {
  db.transaction(() => {
    setSetting(db, 'revocations', JSON.stringify(list));
    appendAudit(db, {
      kind: 'trust.revocations',
      outcome: 'info',
      message: `revocation list version ${list.version} accepted: ${list.revoked.map((r) => r.name).join(', ') || 'none'} revoked`,
      media,
      details: { version: list.version, revoked: list.revoked },
    });
  })();
}

/** Key id → what to tell the operator, for every key the list revokes. */
export function revokedKeysOf(list: RevocationList | null): Map<string, string> {
  return new Map(
    (list?.revoked ?? []).map((r) => [
      r.keyId,
      `signer ${r.name}, revoked on ${r.revokedAt}${r.reason ? ` (${r.reason})` : ''}`,
    ]),
  );
}
