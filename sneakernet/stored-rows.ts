/**
 * Rows read back from a station's own SQLite catalog, checked where they cross into the code. Each table's module
 * describes its rows with a zod schema and reads them only through `storedRows`: a row the schema does not describe
 * (a hand-edited or damaged database, a column of the wrong type) is E_STORE naming the table, the column and what
 * the operator does next, never an unchecked cast. Statements are prepared once per connection.
 *
 * Shared by both stations (each has its own tables, none of them on the media), so it depends on no database driver:
 * anything with better-sqlite3's `prepare(sql).get/all` shape will do.
 */
import { z } from 'zod';
import { checkId } from './check-ids.js';
import { EcluseError, type ErrorCode } from './errors.js';

/** What a prepared statement offers for reading (better-sqlite3's `Statement`). */
export interface ReadStatement {
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  iterate(...params: unknown[]): IterableIterator<unknown>;
}

/** A database connection as far as reading goes (better-sqlite3's `Database`). */
export interface ReadConnection {
  prepare(sql: string): ReadStatement;
}

const prepared = new WeakMap<object, Map<string, ReadStatement>>();

/** The statement for `sql` on `db`, compiled the first time it is asked for and kept for the connection's life. */
export function preparedOnce(db: ReadConnection, sql: string): ReadStatement {
  let byText = prepared.get(db);
  if (!byText) {
    byText = new Map();
    prepared.set(db, byText);
  }
  let s = byText.get(sql);
  if (!s) {
    s = db.prepare(sql);
    byText.set(sql, s);
  }
  return s;
}

export interface StoredRows<T> {
  /** The first row `sql` selects, checked; undefined when there is none. */
  get(db: ReadConnection, sql: string, ...params: unknown[]): T | undefined;
  /** Every row `sql` selects, checked, in the order SQLite returns them. */
  all(db: ReadConnection, sql: string, ...params: unknown[]): T[];
  /** The rows `sql` selects one at a time, checked as they come (no write may run on the connection meanwhile). */
  iterate(db: ReadConnection, sql: string, ...params: unknown[]): Generator<T>;
  /** A row already read (e.g. by a statement built on the fly), checked. */
  check(row: unknown): T;
}

/**
 * The reader of one table's rows (or of one projection of them). `advice` is the operator's next step when a row is
 * malformed, e.g. `restore the home from its last backup`; `code` is E_STORE unless the table says what a malformed row
 * means (an audit event that is not what was logged has been tampered with).
 */
export function storedRows<S extends z.ZodType>(
  table: string,
  schema: S,
  advice: string,
  code: ErrorCode = 'E_STORE',
): StoredRows<z.output<S>> {
  const check = (row: unknown): z.output<S> => {
    const r = schema.safeParse(row);
    if (r.success) return r.data;
    const issue = r.error.issues[0];
    const where = issue ? `${issue.path.join('.') || 'row'}: ${issue.message}` : 'unreadable';
    throw new EcluseError(code, `a row of ${table} is malformed (${where}): ${advice}`, {
      check: checkId('catalog-row'),
      table,
      column: issue?.path.join('.') ?? null,
    });
  };
  return {
    get(db, sql, ...params) {
      const row = preparedOnce(db, sql).get(...params);
      return row === undefined ? undefined : check(row);
    },
    all(db, sql, ...params) {
      return preparedOnce(db, sql)
        .all(...params)
        .map(check);
    },
    *iterate(db, sql, ...params) {
      for (const row of preparedOnce(db, sql).iterate(...params)) yield check(row);
    },
    check,
  };
}

const columnInfo = z.object({ name: z.string(), pk: z.number().int().nonnegative() });

/**
 * The columns of a table as SQLite describes them (`PRAGMA table_info`), for migrations that add a column when it is
 * missing. `table` is one of the caller's own table names, never input.
 */
export function tableColumns(db: ReadConnection, table: string): Array<{ name: string; primaryKey: boolean }> {
  return storedRows(table, columnInfo, 'restore the home from its last backup')
    .all(db, `PRAGMA table_info(${table})`)
    .map((c) => ({ name: c.name, primaryKey: c.pk > 0 }));
}

/** A TEXT column holding JSON, parsed and checked against `schema` as the row is read. */
export const jsonText = <T extends z.ZodType>(schema: T) =>
  z.string().transform((text, ctx): z.output<T> => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not JSON' });
      return z.NEVER;
    }
    const r = schema.safeParse(parsed);
    if (!r.success) {
      for (const issue of r.error.issues) ctx.addIssue({ ...issue, code: 'custom', message: issue.message });
      return z.NEVER;
    }
    return r.data;
  });
