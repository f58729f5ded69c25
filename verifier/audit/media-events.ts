/**
 * The media sessions read back from the audit log (web/media-sessions.ts): which media the daemon saw inserted or
 * refused, and the events logged at a media path between two sequence numbers. Each row checked against its schema
 * (events.ts).
 */
import { z } from 'zod';
import type { ReadConnection } from '../../sneakernet/stored-rows.js';
import { AUDIT_COLUMNS, auditRows, distinctValues, loggedEvents, optionalText, type AuditRecord } from './events.js';

const text = z.string();

const mediaSession = auditRows(z.object({ seq: z.number().int().positive(), media: text, details: text }));

/** The last `limit` media insertions and refusals the daemon recorded, newest first. */
export function mediaInsertions(
  db: ReadConnection,
  limit: number,
): Array<{ seq: number; media: string; details: string }> {
  return mediaSession.all(
    db,
    `SELECT seq, media, details FROM audit WHERE kind IN ('media.inserted', 'media.refused') AND media IS NOT NULL
     ORDER BY seq DESC LIMIT ?`,
    limit,
  );
}

/** The events at a media path with `seq` in [from, to), in order (at most 2000). */
export function eventsAtMedia(db: ReadConnection, media: string, from: number, to: number): AuditRecord[] {
  return loggedEvents.all(
    db,
    `SELECT ${AUDIT_COLUMNS} FROM audit WHERE media = ? AND seq >= ? AND seq < ? ORDER BY seq LIMIT 2000`,
    media,
    from,
    to,
  );
}

const rangeStats = auditRows(
  z.object({ events: z.number().int().nonnegative(), first: optionalText, last: optionalText }),
);

/** How many events a media path has with `seq` in [from, to), and when the first and the last were. */
export function mediaRangeStats(
  db: ReadConnection,
  media: string,
  from: number,
  to: number,
): { events: number; first: string; last: string } {
  const s = rangeStats.get(
    db,
    `SELECT count(*) AS events, min(at) AS first, max(at) AS last FROM audit
     WHERE media = @m AND seq >= @from AND seq < @to`,
    { m: media, from, to },
  );
  return { events: s?.events ?? 0, first: s?.first ?? '', last: s?.last ?? '' };
}

/** The media paths the log names, in order (one index step each), at most `limit`. */
export function mediaPaths(db: ReadConnection, limit: number): string[] {
  return distinctValues(db, 'media', limit);
}
