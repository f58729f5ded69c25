/**
 * The import station's tables are read through their modules, every row checked: a row written by hand or damaged
 * (here: a value of the wrong type, which SQLite stores as given) is refused by name, never passed on as if typed.
 * Real SQLite files in a station home.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendAudit } from '../../verifier/audit.js';
import { eventPage } from '../../verifier/audit/events.js';
import { verifyLog } from '../../verifier/audit/verify.js';
import { highWaters } from '../../verifier/accepted-state.js';
import { openDb, setSetting, type Db } from '../../verifier/db.js';
import { imageById, storedFiles } from '../../verifier/image-catalog.js';
import { EcluseError } from '../../sneakernet/errors.js';

let dir: string;
let db: Db;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-table-rows-'));
  db = openDb(dir);
  setSetting(db, 'site_id', 'unit');
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function refusal(run: () => unknown): EcluseError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(EcluseError);
    return e as EcluseError;
  }
  throw new Error('expected a refusal');
}

const ID = '2b7f3c1e-9d7a-4c5e-8f00-0123456789ab';

function insertImage(size: unknown): void {
  db.prepare(
    `INSERT INTO images (id, name, status, created_at, updated_at, origin, size, file)
     VALUES (?, 'debian-13', 'active', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'api', ?, ?)`,
  ).run(ID, size, ID);
}

describe('the image catalog', () => {
  it('reads a well-formed row with its types', () => {
    insertImage(1024);
    expect(imageById(db, ID)).toMatchObject({ id: ID, size: 1024, protected: 0, origin: 'api', tags: '[]' });
    expect(imageById(db, 'no-such-image')).toBeUndefined();
  });

  it('refuses a row whose size is text: E_STORE naming the table, the column and the next step', () => {
    insertImage('twelve');
    for (const read of [() => imageById(db, ID), () => storedFiles(db)]) {
      const e = refusal(read);
      expect(e.code).toBe('E_STORE');
      expect(e.context).toMatchObject({ check: 'catalog-row', table: 'images', column: 'size' });
      expect(e.message).toMatch(/^a row of images is malformed \(size: .*\): run "ecluse store check"/);
    }
  });
});

describe('the accepted state', () => {
  it('refuses a high-water mark whose sequence is not a number', () => {
    db.prepare(
      "INSERT INTO stations VALUES ('relay-1', 'three', 'b-3', 'ab', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
    ).run();
    const e = refusal(() => highWaters(db));
    expect(e.code).toBe('E_STORE');
    expect(e.context).toMatchObject({ check: 'catalog-row', table: 'stations', column: 'sequence' });
  });
});

describe('the audit log', () => {
  it('an event whose kind was replaced by raw bytes is tampered with: in the timeline and in audit verify', () => {
    appendAudit(db, { kind: 'site.init', outcome: 'info', message: 'first' });
    appendAudit(db, { kind: 'store.checked', outcome: 'info', message: 'second' });
    expect(eventPage(db, {}, {}, 10).rows.map((r) => r.kind)).toEqual(['store.checked', 'site.init']);
    expect(verifyLog(db, dir).size).toBe(2);
    // A TEXT column turns a number into text; bytes stay bytes.
    db.prepare("UPDATE audit SET kind = x'07' WHERE message = 'second'").run();
    const timeline = refusal(() => eventPage(db, {}, {}, 10));
    expect(timeline.code).toBe('E_AUDIT_TAMPERED');
    expect(timeline.context).toMatchObject({ check: 'catalog-row', table: 'audit', column: 'kind' });
    const verified = refusal(() => verifyLog(db, dir));
    expect(verified.code).toBe('E_AUDIT_TAMPERED');
    expect(verified.context).toMatchObject({ check: 'audit-log', index: 1, column: 'kind' });
    expect(verified.message).toMatch(/^event 1 \(seq \d+\) was edited: its kind is not what écluse writes$/);
  });
});
