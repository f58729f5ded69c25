/**
 * A relay home made before chains per site (schema 0: one shared sequence, `exported_in` the only record of what a
 * bundle carried) opens as schema 1: the bundles keep their numbers and statements, each site's chain is its own, what
 * each bundle carried is known, and the migration is recorded in the relay's events.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openRelayHome } from '../../relay/catalog.js';
import { carriedBy, chainOf, lastExport } from '../../relay/chains.js';
import { listEvents } from '../../relay/events.js';
import { planExport } from '../../relay/export-plan.js';

/** The catalog layout as the first release wrote it (relay/catalog.ts before schema 1), statements kept. */
const SCHEMA_0 = `
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE artifacts (
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, version TEXT NOT NULL, type TEXT NOT NULL,
  size INTEGER NOT NULL, sha256 TEXT NOT NULL, sha512 TEXT NOT NULL, disk_format TEXT NOT NULL,
  container_format TEXT NOT NULL, properties TEXT NOT NULL, vendor TEXT, source TEXT NOT NULL, added_at TEXT NOT NULL,
  exported_in TEXT, UNIQUE (name, version)
);
CREATE TABLE exports (
  sequence INTEGER PRIMARY KEY, bundle_id TEXT NOT NULL UNIQUE, statement_sha256 TEXT NOT NULL, site TEXT NOT NULL,
  created TEXT NOT NULL, expires TEXT NOT NULL, media TEXT NOT NULL, volumes INTEGER NOT NULL, bytes INTEGER NOT NULL,
  statement BLOB, media_bytes INTEGER
);
CREATE TABLE superseded_exports (
  sequence INTEGER NOT NULL, bundle_id TEXT PRIMARY KEY, statement_sha256 TEXT NOT NULL, site TEXT NOT NULL,
  created TEXT NOT NULL, superseded_at TEXT NOT NULL, superseded_by TEXT NOT NULL
);
CREATE TABLE receipts (
  site TEXT NOT NULL, number INTEGER NOT NULL, issued TEXT NOT NULL, acknowledged INTEGER NOT NULL,
  payload TEXT NOT NULL, taken_at TEXT NOT NULL, PRIMARY KEY (site, number)
);
`;

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) fs.rmSync(r, { recursive: true, force: true });
});

function oldHome(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-relay-v0-'));
  roots.push(root);
  fs.mkdirSync(path.join(root, 'blobs', 'sha256'), { recursive: true });
  const db = new Database(path.join(root, 'relay.sqlite'));
  db.exec(SCHEMA_0);
  db.prepare("INSERT INTO settings VALUES ('station', 'relay-old')").run();
  const add = db.prepare(
    `INSERT INTO artifacts (name, version, type, size, sha256, sha512, disk_format, container_format, properties,
     vendor, source, added_at, exported_in) VALUES (?, ?, 'vm-image', 4, ?, ?, 'raw', 'bare', '{}', NULL, 'f', '2026-11-01T00:00:00Z', ?)`,
  );
  // img-a went to site A in #1 and to site B in #2 (exported_in keeps only #2); img-b to A in #3; img-c in none.
  add.run('img-a', '1', sha('a'), sha('a') + sha('a'), 'bundle-2');
  add.run('img-b', '1', sha('b'), sha('b') + sha('b'), 'bundle-3');
  add.run('img-c', '1', sha('c'), sha('c') + sha('c'), null);
  for (const name of ['a', 'b', 'c']) fs.writeFileSync(path.join(root, 'blobs', 'sha256', sha(name)), 'blob');
  const statement = (seq: number, site: string, digests: string[]) =>
    Buffer.from(JSON.stringify({ predicate: { sequence: seq, site, artifacts: digests.map((d) => ({ sha256: d })) } }));
  const exp = db.prepare(
    `INSERT INTO exports (sequence, bundle_id, statement_sha256, site, created, expires, media, volumes, bytes,
     statement, media_bytes) VALUES (?, ?, ?, 'SITE', '2026-11-01T00:00:00Z', '2099-01-01T00:00:00Z', '/m', 1, 10, ?, 1024)`.replace(
      "'SITE'",
      '?',
    ),
  );
  exp.run(1, 'bundle-1', sha('s1'), 'site-a', statement(1, 'site-a', [sha('a')]));
  exp.run(2, 'bundle-2', sha('s2'), 'site-b', statement(2, 'site-b', [sha('a')]));
  exp.run(3, 'bundle-3', sha('s3'), 'site-a', null);
  db.close();
  return root;
}

describe('relay catalog migration 0 → 1 (chains per site)', () => {
  it('keeps every bundle with its number, makes one chain per site and knows what each carried', () => {
    const root = oldHome();
    const home = openRelayHome(root);
    try {
      expect(home.db.pragma('user_version', { simple: true })).toBe(2);
      expect(home.station).toBe('relay-old');
      const pk = (home.db.prepare('PRAGMA table_info(exports)').all() as Array<{ name: string; pk: number }>)
        .filter((c) => c.pk > 0)
        .sort((x, y) => x.pk - y.pk)
        .map((c) => c.name);
      expect(pk).toEqual(['site', 'sequence']);
      expect(chainOf(home.db, 'site-a').map((r) => [r.sequence, r.bundle_id])).toEqual([
        [1, 'bundle-1'],
        [3, 'bundle-3'],
      ]);
      expect(chainOf(home.db, 'site-b').map((r) => [r.sequence, r.bundle_id])).toEqual([[2, 'bundle-2']]);
      expect(Buffer.from(chainOf(home.db, 'site-b')[0]?.statement ?? '').toString()).toContain('"sequence":2');
      const id = (name: string) =>
        (home.db.prepare('SELECT id FROM artifacts WHERE name = ?').get(name) as { id: number }).id;
      // From the statements where kept, from exported_in where not.
      expect(carriedBy(home.db, 'bundle-1')).toEqual([id('img-a')]);
      expect(carriedBy(home.db, 'bundle-2')).toEqual([id('img-a')]);
      expect(carriedBy(home.db, 'bundle-3')).toEqual([id('img-b')]);
      expect(listEvents(home.db).map((e) => e.kind)).toEqual(['catalog.migrated']);
      expect(lastExport(home.db, 'site-a')?.sequence).toBe(3);
    } finally {
      home.db.close();
    }
    // Opening again changes nothing (the migration ran once).
    const again = openRelayHome(root);
    try {
      expect(listEvents(again.db)).toHaveLength(1);
      expect(chainOf(again.db, 'site-a')).toHaveLength(2);
    } finally {
      again.db.close();
    }
  });

  it('continues each site on its own chain after the migration', async () => {
    const home = openRelayHome(oldHome());
    try {
      const plan = async (site: string) =>
        (
          await planExport(home, {
            mode: { kind: 'fresh' },
            site,
            media: [],
            mediaBytes: 1024 * 1024,
            signers: 1,
            expiresInMs: 86_400_000,
            all: false,
            force: false,
            includeRefused: false,
            noEvidence: false,
            noDelta: true,
          })
        ).plan;
      const a = await plan('site-a');
      expect(a).toMatchObject({ sequence: 4, previous: { bundleId: 'bundle-3', sequence: 3 } });
      expect(a.artifacts.map((x) => x.name)).toEqual(['img-c']);
      const b = await plan('site-b');
      expect(b).toMatchObject({ sequence: 3, previous: { bundleId: 'bundle-2', sequence: 2 } });
      expect(b.artifacts.map((x) => x.name)).toEqual(['img-b', 'img-c']);
      const c = await plan('site-c');
      expect(c).toMatchObject({ sequence: 1, previous: null });
      expect(c.artifacts.map((x) => x.name)).toEqual(['img-a', 'img-b', 'img-c']);
    } finally {
      home.db.close();
    }
  });

  it('creates a new home at the current schema (2) directly', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-relay-new-'));
    roots.push(root);
    const home = openRelayHome(root);
    try {
      expect(home.db.pragma('user_version', { simple: true })).toBe(2);
      expect(listEvents(home.db)).toEqual([]);
    } finally {
      home.db.close();
    }
  });
});

describe('relay catalog migration 1 → 2 (OCI images)', () => {
  it('adds the image tables to a schema-1 home, keeps its rows, and records the migration', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-relay-v1-'));
    roots.push(root);
    // A schema-1 home: what this release makes, less the image tables, at user_version 1.
    const first = openRelayHome(root);
    first.db.exec('DROP TABLE images; DROP TABLE image_blobs;');
    first.db.pragma('user_version = 1');
    first.db
      .prepare(
        `INSERT INTO artifacts (name, version, type, size, sha256, sha512, disk_format, container_format, properties,
         source, added_at) VALUES ('vm', '1', 'vm-image', 4, ?, ?, 'raw', 'bare', '{}', 'f', '2026-11-01T00:00:00Z')`,
      )
      .run(sha('vm'), sha('vm') + sha('vm'));
    first.db.close();
    const home = openRelayHome(root);
    try {
      expect(home.db.pragma('user_version', { simple: true })).toBe(2);
      const tables = (
        home.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>
      ).map((t) => t.name);
      expect(tables).toEqual(expect.arrayContaining(['images', 'image_blobs']));
      expect(home.db.prepare('SELECT name, type FROM artifacts').all()).toEqual([{ name: 'vm', type: 'vm-image' }]);
      expect(listEvents(home.db).map((e) => [e.kind, e.subject, e.details])).toEqual([
        ['catalog.migrated', 'schema 2', { from: 1, to: 2, change: 'OCI images (images, image_blobs)' }],
      ]);
    } finally {
      home.db.close();
    }
  });
});
