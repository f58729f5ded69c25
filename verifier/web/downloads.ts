/** GET /audit/events.jsonl and /audit/events.csv: the filtered events, oldest first, streamed. */
import type express from 'express';
import type { Db } from '../db.js';
import { allEvents, filterFrom } from './queries.js';

const CSV_COLUMNS = [
  'seq',
  'at',
  'kind',
  'outcome',
  'code',
  'message',
  'bundle_id',
  'station',
  'artifact',
  'media',
  'details',
] as const;

/** RFC 4180 quoting, and a leading quote on values a spreadsheet would run as a formula. */
export function csvCell(v: unknown): string {
  let s =
    typeof v === 'string'
      ? v
      : typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean'
        ? String(v)
        : v === null || v === undefined
          ? ''
          : (JSON.stringify(v) ?? '');
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

async function stream(res: express.Response, lines: Iterable<string>): Promise<void> {
  let buf: string[] = [];
  for (const l of lines) {
    buf.push(l);
    if (buf.length >= 2000) {
      if (!res.write(buf.join(''))) await new Promise((r) => res.once('drain', r));
      buf = [];
    }
  }
  res.end(buf.join(''));
}

export function downloadHandler(db: Db, format: 'jsonl' | 'csv'): express.RequestHandler {
  return (req, res, next) => {
    const f = filterFrom(new URL(req.originalUrl, 'http://x').searchParams);
    const name = `ecluse-audit-${new Date().toISOString().slice(0, 10)}.${format}`;
    res.set('Content-Disposition', `attachment; filename="${name}"`);
    res.set('Cache-Control', 'no-store');
    if (format === 'jsonl') {
      res.type('application/x-ndjson; charset=utf-8');
      const lines = (function* () {
        for (const r of allEvents(db, f))
          yield `${JSON.stringify({ ...r, details: JSON.parse(r.details) as unknown })}\n`;
      })();
      stream(res, lines).catch(next);
    } else {
      res.type('text/csv; charset=utf-8');
      const lines = (function* () {
        yield `${CSV_COLUMNS.join(',')}\r\n`;
        for (const r of allEvents(db, f)) yield `${CSV_COLUMNS.map((c) => csvCell(r[c])).join(',')}\r\n`;
      })();
      stream(res, lines).catch(next);
    }
  };
}
