/**
 * One list of check ids below the verifier (sneakernet/check-ids.ts), held together with the import's own list
 * (verifier/checks.ts): an id with a FORMAT.md step is an import check at that same step, one without is not an import
 * check at all. And sneakernet/'s own refusals, asserted by class, code and check.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { CHECK_IDS, checkId, isCheckId, type CheckId } from '../../sneakernet/check-ids.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { parseBoundedJson } from '../../sneakernet/statement.js';
import { storedRows } from '../../sneakernet/stored-rows.js';
import { failedCheck, IMPORT_CHECKS, isCheckName } from '../../verifier/checks.js';

function refusal(run: () => unknown): EcluseError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(EcluseError);
    return e as EcluseError;
  }
  throw new Error('expected a refusal');
}

describe('check ids', () => {
  it('every id with a step is the import check at that step; every id without one is no import check', () => {
    for (const [id, step] of Object.entries(CHECK_IDS) as Array<[CheckId, string | null]>) {
      if (step === null) expect(isCheckName(id), id).toBe(false);
      else expect(IMPORT_CHECKS[id as keyof typeof IMPORT_CHECKS], id).toBe(step);
      expect(failedCheck({ check: id }), id).toEqual({ check: id, step });
    }
  });

  it('checkId returns the id it is given, and isCheckId knows only the list', () => {
    expect(checkId('volume-digest')).toBe('volume-digest');
    expect(isCheckId('volume-digest')).toBe(true);
    expect(isCheckId('volume-digests')).toBe(false);
    expect(isCheckId(undefined)).toBe(false);
  });
});

describe('sneakernet/ refusals name their check', () => {
  it('JSON over its bound, not UTF-8, nested too deep or not JSON: E_FORMAT, check format', () => {
    const cases = [
      Buffer.from('{"a":1}'.padEnd(100, ' ')),
      Buffer.from([0x7b, 0xff, 0x7d]),
      Buffer.from('['.repeat(200) + ']'.repeat(200)),
      Buffer.from('{"a":'),
    ];
    const messages = cases.map((bytes, i) => {
      const e = refusal(() => parseBoundedJson(bytes, 'the statement', i === 0 ? 64 : 4096));
      expect(e.code).toBe('E_FORMAT');
      expect(e.context.check).toBe('format');
      return e.message;
    });
    expect(messages[0]).toMatch(/more than the 64 allowed/);
    expect(messages[1]).toMatch(/not valid UTF-8/);
    expect(messages[2]).toMatch(/nests deeper than/);
    expect(messages[3]).toMatch(/not valid JSON/);
  });

  it('a stored row its schema does not describe: E_STORE, check catalog-row, naming the table and the column', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-rows-'));
    const db = new Database(path.join(dir, 'rows.sqlite'));
    try {
      db.exec('CREATE TABLE things (name TEXT NOT NULL, size INTEGER NOT NULL)');
      db.prepare('INSERT INTO things VALUES (?, ?)').run('a', 1);
      const things = storedRows('things', z.object({ name: z.string(), size: z.number().int() }), 'restore it');
      expect(things.all(db, 'SELECT * FROM things')).toEqual([{ name: 'a', size: 1 }]);
      expect(things.get(db, 'SELECT * FROM things WHERE name = ?', 'b')).toBeUndefined();
      db.prepare('INSERT INTO things VALUES (?, ?)').run('b', 'twelve');
      const e = refusal(() => things.all(db, 'SELECT * FROM things'));
      expect(e.code).toBe('E_STORE');
      expect(e.context).toMatchObject({ check: 'catalog-row', table: 'things', column: 'size' });
      expect(e.message).toMatch(/^a row of things is malformed \(size: .*\): restore it$/);
    } finally {
      db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
