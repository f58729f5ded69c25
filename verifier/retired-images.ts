/**
 * The store's retired images (`retired_images`, listed in db.ts MODULE_SCHEMAS): every image that came through a
 * bundle and was retired from the store (`ecluse image retire`, the policy's `keepNewest`, or a Glance API delete
 * where the site allows it). A row outlives its image: the receipt lists it (`retired`), and the version order
 * keeps counting it, so a retired version is not admitted again as if it were new (E_ROLLBACK).
 *
 * Also the reads and writes of the `images` table that retirement needs (to join the images module of issue 13).
 */
import { z } from 'zod';
import { EcluseError } from '../sneakernet/errors.js';
import type Database from 'better-sqlite3';

/** The catalog connection (db.ts's Db; not imported from there: db.ts lists this module's schema). */
type Db = Database.Database;

export const RETIRED_IMAGES_SCHEMA = `
CREATE TABLE IF NOT EXISTS retired_images (
  image_id    TEXT PRIMARY KEY,
  name        TEXT NOT NULL,
  version     TEXT NOT NULL,
  sha256      TEXT NOT NULL,
  size        INTEGER NOT NULL,
  bundle_id   TEXT,
  retired_at  TEXT NOT NULL,
  -- 'operator' (ecluse image retire), 'keep-newest' (the policy), 'api' (a Glance API delete)
  reason      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS retired_images_name ON retired_images (name, version);
CREATE INDEX IF NOT EXISTS retired_images_at ON retired_images (retired_at);
`;

export type RetirementReason = 'operator' | 'keep-newest' | 'api';

const retiredRow = z.strictObject({
  image_id: z.string(),
  name: z.string(),
  version: z.string(),
  sha256: z.string(),
  size: z.number().int().nonnegative(),
  bundle_id: z.string().nullable(),
  retired_at: z.string(),
  reason: z.enum(['operator', 'keep-newest', 'api']),
});
export type RetiredRow = z.infer<typeof retiredRow>;

/** A bundle image as retirement sees it. */
const bundleImageRow = z.strictObject({
  id: z.string(),
  name: z.string(),
  version: z.string(),
  sha256: z.string(),
  size: z.number().int().nonnegative(),
  file: z.string().nullable(),
  protected: z.number().int(),
  os_hidden: z.number().int(),
  bundle_id: z.string().nullable(),
  vendor: z.string().nullable(),
});
export type BundleImage = z.infer<typeof bundleImageRow>;

function checked<T>(schema: z.ZodType<T>, table: string, rows: unknown[]): T[] {
  return rows.map((r) => {
    const parsed = schema.safeParse(r);
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw new EcluseError(
        'E_STORE',
        `a row of ${table} is not what the catalog describes (${i ? `${i.path.join('.')}: ${i.message}` : 'invalid'}): run "ecluse store check" and restore the home from its last backup if the catalog is damaged`,
        { check: 'catalog', table },
      );
    }
    return parsed.data;
  });
}

const BUNDLE_IMAGE_COLUMNS = `id, artifact_name AS name, artifact_version AS version, sha256, size, file, protected, os_hidden,
  bundle_id, json_extract(properties, '$.ecluse_vendor') AS vendor`;

/** The images of `name` (of one version, when given) that came through bundles. */
export function bundleImagesOf(db: Db, name: string, version?: string): BundleImage[] {
  const rows =
    version === undefined
      ? db
          .prepare(
            `SELECT ${BUNDLE_IMAGE_COLUMNS} FROM images WHERE origin = 'bundle' AND artifact_name = ? ORDER BY created_at, id`,
          )
          .all(name)
      : db
          .prepare(
            `SELECT ${BUNDLE_IMAGE_COLUMNS} FROM images WHERE origin = 'bundle' AND artifact_name = ? AND artifact_version = ?
             ORDER BY created_at, id`,
          )
          .all(name, version);
  return checked(bundleImageRow, 'images', rows);
}

/** Every artifact name the store holds from bundles. */
export function bundleImageNames(db: Db): string[] {
  const rows = db
    .prepare(
      "SELECT DISTINCT artifact_name AS name FROM images WHERE origin = 'bundle' AND artifact_name IS NOT NULL ORDER BY 1",
    )
    .all();
  return checked(z.strictObject({ name: z.string() }), 'images', rows).map((r) => r.name);
}

/** Removes an image's catalog rows (the image and its members); its file is removed by the caller, after the commit. */
export function deleteImageRow(db: Db, id: string): void {
  db.prepare('DELETE FROM images WHERE id = ?').run(id);
  db.prepare('DELETE FROM image_members WHERE image_id = ?').run(id);
}

/** Lists an image again (`os_hidden` off): the newest version left once a newer one is retired. */
export function showImage(db: Db, id: string, at: string): void {
  db.prepare('UPDATE images SET os_hidden = 0, updated_at = ? WHERE id = ?').run(at, id);
}

export function recordRetired(db: Db, i: BundleImage, at: string, reason: RetirementReason): void {
  db.prepare(
    `INSERT OR REPLACE INTO retired_images (image_id, name, version, sha256, size, bundle_id, retired_at, reason)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(i.id, i.name, i.version, i.sha256, i.size, i.bundle_id, at, reason);
}

/** Retired images, newest first (at most `limit`). */
export function retiredImages(db: Db, limit = 10_000, name?: string): RetiredRow[] {
  const rows =
    name === undefined
      ? db.prepare('SELECT * FROM retired_images ORDER BY retired_at DESC, rowid DESC LIMIT ?').all(limit)
      : db
          .prepare('SELECT * FROM retired_images WHERE name = ? ORDER BY retired_at DESC, rowid DESC LIMIT ?')
          .all(name, limit);
  return checked(retiredRow, 'retired_images', rows);
}

/** The versions of `name` retired here (the version order still counts them). */
export function retiredVersions(db: Db, name: string): string[] {
  const rows = db.prepare('SELECT DISTINCT version FROM retired_images WHERE name = ?').all(name);
  return checked(z.strictObject({ version: z.string() }), 'retired_images', rows).map((r) => r.version);
}
