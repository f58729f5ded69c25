/**
 * The canonical bytes of an audit event: what a leaf hashes and what an export line holds. A JSON object with a fixed
 * key order; `details` is kept as the exact JSON text stored, so nothing is re-serialised. The leaf does not include
 * the row's `seq`: its position in the tree is its index, so a moved event is named by where it was logged.
 */
import { leafHash } from './merkle.js';

import type { AuditRecord } from './events.js';

/** A row of the `audit` table: described and read in events.ts. */
export { AUDIT_COLUMNS, type AuditRecord } from './events.js';

export function canonicalEvent(r: Omit<AuditRecord, 'seq'>): string {
  return JSON.stringify({
    at: r.at,
    kind: r.kind,
    outcome: r.outcome,
    code: r.code,
    message: r.message,
    bundle_id: r.bundle_id,
    station: r.station,
    artifact: r.artifact,
    media: r.media,
    details: r.details,
  });
}

export function eventLeaf(r: Omit<AuditRecord, 'seq'>): Buffer {
  return leafHash(Buffer.from(canonicalEvent(r), 'utf8'));
}
