/**
 * Prepared statements of the API's hot paths, kept per database: better-sqlite3 compiles a statement at every
 * `prepare` (about 70 µs, a quarter of serving one image by id), and the list query's SQL takes few shapes (the
 * filters and sort a client asks for). Bounded: past `MAX` distinct texts the cache starts again, so a client sending
 * endless new filter combinations cannot grow it.
 */
import type Database from 'better-sqlite3';
import type { Db } from '../db.js';

const MAX = 256;
const caches = new WeakMap<Db, Map<string, Database.Statement>>();

export function statement(db: Db, sql: string): Database.Statement {
  let cache = caches.get(db);
  if (!cache) {
    cache = new Map();
    caches.set(db, cache);
  }
  let st = cache.get(sql);
  if (!st) {
    if (cache.size >= MAX) cache.clear();
    st = db.prepare(sql);
    cache.set(sql, st);
  }
  return st;
}
