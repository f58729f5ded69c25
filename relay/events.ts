/**
 * The export station's own record of what its operators did (`relay_events`): bundles written and replaced,
 * artifacts removed from the catalog, receipts taken, the catalog migrated. Read by `ecluse relay events`.
 */
import { z } from 'zod';
import { isoSeconds } from '../sneakernet/statement.js';
import { jsonText, storedRows } from '../sneakernet/stored-rows.js';
import type { RelayDb } from './relay-db.js';

export const RELAY_EVENT_KINDS = [
  'export.written',
  'export.resent',
  'export.replaced',
  'artifact.removed',
  'receipt.taken',
  'catalog.migrated',
  'image.added',
] as const;
export type RelayEventKind = (typeof RELAY_EVENT_KINDS)[number];

/** A row of `relay_events`, its details parsed. */
const eventRow = z.object({
  id: z.number().int().positive(),
  at: z.string(),
  kind: z.enum(RELAY_EVENT_KINDS),
  site: z.string().nullable(),
  subject: z.string().nullable(),
  details: jsonText(z.record(z.string(), z.unknown())),
});
export type RelayEvent = z.output<typeof eventRow>;
const events = storedRows('relay_events', eventRow, 'restore the station home from its last backup');

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
  return events.all(db, 'SELECT * FROM relay_events ORDER BY id DESC LIMIT ?', limit).reverse();
}
