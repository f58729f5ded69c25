/**
 * verifier/glance/statements.ts: a statement is compiled once per SQL text and database, and the cache stays bounded
 * whatever SQL texts clients make the list query build. A real SQLite file.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { statement } from '../../../verifier/glance/statements.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-statements-'));
const db = new Database(path.join(dir, 'x.sqlite'));
const other = new Database(path.join(dir, 'y.sqlite'));
afterAll(() => {
  db.close();
  other.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('statement cache', () => {
  it('returns the same compiled statement for the same text on the same database, another on another database', () => {
    const a = statement(db, 'SELECT 1 AS one');
    expect(statement(db, 'SELECT 1 AS one')).toBe(a);
    expect(statement(other, 'SELECT 1 AS one')).not.toBe(a);
    expect(a.get()).toEqual({ one: 1 });
  });

  it('starts again past 256 distinct texts: an endless variety of filters cannot grow it', () => {
    const first = statement(db, 'SELECT 0 AS n');
    for (let i = 1; i <= 256; i++) statement(db, `SELECT ${i} AS n`);
    expect(statement(db, 'SELECT 0 AS n')).not.toBe(first);
    expect(statement(db, 'SELECT 0 AS n').get()).toEqual({ n: 0 });
  });
});
