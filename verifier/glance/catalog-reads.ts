/**
 * The catalog's reads kept between requests: each image as the JSON text Glance writes for it (pages are joined from
 * them), and whole response bodies of `GET /v2/images` and `GET /v2/images/{id}` by who asks and what.
 *
 * Building a page of 25 images from their rows was most of what a list request cost the server (measured at 10,000
 * images: reading every column of 25 rows into objects 0.18-0.24 ms, the records 0.08 ms, their JSON 0.22 ms, of
 * 1.1-1.4 ms of CPU per request), and a catalog is read far more often than it changes. So a page's query reads only
 * the ids, in order, and each image's JSON text comes from a bounded cache; only the images not in it are read whole.
 *
 * Nothing stale is served: the cache is emptied whenever the catalog may have changed — a commit by any other
 * connection (`PRAGMA data_version`: an import in another process, the daemon) or a change by this one
 * (`total_changes()`) — and the ids, that check and the rows read for it happen in one read transaction, so a page
 * never mixes two states of the catalog. Every image's JSON is exactly `pyJson(imageRecord(row))`, so a page joined
 * from them is byte for byte the `pyJson` of the whole body (verifier/glance/errors.ts; test/verifier/glance).
 *
 * Clients ask the same reads again and again (a dashboard polling the list, Nova asking for the image it boots), and
 * with 8 clients in flight on 2 cores a request's latency is the server CPU of the requests queued before it. So the
 * body of a read, as sent, is kept too, under the request's scope and URL, emptied with the image texts; a read asked
 * again in the same catalog state costs the check and the socket write (measured at 10,000 images: server CPU per
 * page from ~0.8-1.2 ms to ~0.5 ms; test/verifier/glance/catalog-reads.test.ts asks that every body kept is the one
 * built anew). A refusal (400, 404) is never kept.
 */
import { LRUCache } from 'lru-cache';
import type { Db } from '../db.js';
import { checkedImages } from '../image-catalog.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { pyJson } from './errors.js';
import { pageSql, type ListQuery } from './list-query.js';
import { imageRecord } from './record.js';
import { statement } from './statements.js';

/** The cache's bound, in characters of JSON: ~4,000 images of a typical 2 KB, 8 MB (at most 16 as UTF-16). */
const CACHE_CHARS = 8 * 1024 * 1024;
/** The bound on the bodies kept, in bytes: ~400 list pages of 25 typical images. */
const BODY_BYTES = 16 * 1024 * 1024;
/** What one kept body costs beyond its bytes and its key's characters (the Buffer, the cache's entry), counted. */
const ENTRY_OVERHEAD = 256;

export class CatalogReads {
  private readonly json = new LRUCache<string, string>({
    maxSize: CACHE_CHARS,
    sizeCalculation: (text) => Math.max(1, text.length),
  });
  /**
   * Bodies by scope and URL. A key counts as much as a body: a query string that a page does not echo (an unknown
   * marker's refusal is not kept, but `member_status=...` is not in `first`) must not let small bodies hold big keys.
   */
  private readonly bodies: LRUCache<string, Buffer>;
  /** The catalog state the cached texts were made from: data_version and total_changes, or null before the first. */
  private version: string | null = null;

  /** `bodyBytes`: the bound on the bodies kept and their keys (16 MiB). */
  constructor(
    private readonly db: Db,
    o: { bodyBytes?: number } = {},
  ) {
    this.bodies = new LRUCache<string, Buffer>({
      maxSize: o.bodyBytes ?? BODY_BYTES,
      sizeCalculation: (body, key) => body.length + key.length + ENTRY_OVERHEAD,
    });
  }

  /** What the kept bodies and their keys count against their bound. */
  get keptBodyBytes(): number {
    return this.bodies.calculatedSize;
  }

  /** The page's image ids in order, and each image's JSON text (in the same order). Throws 400 for a bad marker. */
  select(q: ListQuery): { ids: string[]; images: string[] } {
    return this.db.transaction(() => {
      const { sql, params } = pageSql(this.db, q, 'id');
      const ids = (statement(this.db, sql).all(...params) as Array<{ id: string }>).map((r) => r.id);
      this.dropIfChanged();
      const texts = new Map<string, string>();
      const missing: string[] = [];
      for (const id of ids) {
        const text = this.json.get(id);
        if (text === undefined) missing.push(id);
        else texts.set(id, text);
      }
      if (missing.length > 0) {
        const rows = statement(this.db, `SELECT * FROM images WHERE id IN (${missing.map(() => '?').join(', ')})`).all(
          ...missing,
        );
        for (const row of checkedImages(rows)) {
          const text = pyJson(imageRecord(row));
          texts.set(row.id, text);
          this.json.set(row.id, text);
        }
      }
      return {
        ids,
        images: ids.map((id) => {
          const text = texts.get(id);
          // Read in the same transaction as the ids: a missing row is a bug, never a concurrent change.
          if (text === undefined) {
            throw new EcluseError('E_INTERNAL', `image ${id} of a list page was not read with it (a bug: report it)`);
          }
          return text;
        }),
      };
    })();
  }

  /**
   * The body of a read for `key` (the request's scope and its URL) in the catalog's current state: the one kept, or
   * `make`'s, kept for the next. The check and `make` run in one read transaction; what `make` throws is not kept.
   */
  body(key: string, make: () => string): Buffer {
    return this.db.transaction(() => {
      this.dropIfChanged();
      const kept = this.bodies.get(key);
      if (kept !== undefined) return kept;
      const body = Buffer.from(make(), 'utf8');
      this.bodies.set(key, body);
      return body;
    })();
  }

  private dropIfChanged(): void {
    const dataVersion = this.db.pragma('data_version', { simple: true }) as number;
    const changes = (statement(this.db, 'SELECT total_changes() AS n').get() as { n: number }).n;
    const now = `${dataVersion}:${changes}`;
    if (now === this.version) return;
    this.json.clear();
    this.bodies.clear();
    this.version = now;
  }
}
