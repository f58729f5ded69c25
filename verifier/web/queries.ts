/**
 * The web view's reads, as its pages ask for them: the queries themselves are those of each table's module
 * (verifier/audit/events.ts for the log, whose timeline uses keyset pagination on `seq`).
 */
import type { Db } from '../db.js';
import {
  distinctKinds,
  eventPage,
  matchingEvents,
  type AuditRecord,
  type EventFilter,
  type EventPage,
} from '../audit/events.js';

export const PAGE_SIZE = 50;

export type TimelineFilter = EventFilter;

export const FILTER_KEYS = ['kind', 'outcome', 'bundle', 'artifact', 'media', 'from', 'to'] as const;

export type TimelinePage = EventPage;

export function filterFrom(params: URLSearchParams): TimelineFilter {
  const f: TimelineFilter = {};
  for (const k of FILTER_KEYS) {
    const v = params.get(k)?.trim();
    if (v) f[k] = v.slice(0, 500);
  }
  return f;
}

export function timeline(
  db: Db,
  f: TimelineFilter,
  page: { before?: number; after?: number },
  size = PAGE_SIZE,
): TimelinePage {
  return eventPage(db, f, page, size);
}

/** Every matching event, oldest first (downloads). */
export function allEvents(db: Db, f: TimelineFilter): Generator<AuditRecord> {
  return matchingEvents(db, f);
}

let kindsCache: { at: number; kinds: string[] } | null = null;

/** The distinct event kinds (for the filter), refreshed at most once a minute. */
export function eventKinds(db: Db): string[] {
  if (kindsCache && Date.now() - kindsCache.at < 60_000) return kindsCache.kinds;
  const kinds = distinctKinds(db, 200);
  kindsCache = { at: Date.now(), kinds };
  return kinds;
}

export { bundleEvents } from '../audit/events.js';
