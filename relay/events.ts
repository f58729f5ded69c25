/**
 * The export station's own record of what its operators did (`relay_events`): bundles written and replaced,
 * artifacts removed from the catalog, receipts taken, the catalog migrated. Read by `ecluse relay events`.
 */
import { isoSeconds } from '../sneakernet/statement.js';
import type { RelayDb } from './catalog.js';

export type RelayEventKind =
  | 'export.written'
  | 'export.resent'
  | 'export.replaced'
  | 'artifact.removed'
  | 'receipt.taken'
  | 'catalog.migrated'
  | 'image.added';

export interface RelayEvent {
  id: number;
  at: string;
  kind: RelayEventKind;
  site: string | null;
  subject: string | null;
  details: Record<string, unknown>;
}

export function recordEvent(
  db: RelayDb,
  kind: RelayEventKind,
  o: { site?: string | null; subject?: string | null; details?: Record<string, unknown>; at?: Date },
): void {
  db.prepare('INSERT INTO relay_events (at, kind, site, subject, details) VALUES (?, ?, ?, ?, ?)').run(
    isoSeconds(o.at ?? new Date()),
    kind,
    o.site ?? null,
    o.subject ?? null,
    JSON.stringify(o.details ?? {}),
  );
}

export function listEvents(db: RelayDb, limit = 100): RelayEvent[] {
  const rows = db.prepare('SELECT * FROM relay_events ORDER BY id DESC LIMIT ?').all(limit) as Array<
    Omit<RelayEvent, 'details'> & { details: string }
  >;
  return rows.reverse().map((r) => ({ ...r, details: JSON.parse(r.details) as Record<string, unknown> }));
}
