/**
 * The image catalog (`images` table, created in db.ts): what the store holds, as the Glance API, imports, receipts,
 * the store check and the web view read it. Every read of the table goes through here, rows checked against the
 * schema below (a row it does not describe is E_STORE naming the column, never an unchecked cast).
 */
import { z } from 'zod';
import { storedRows, type ReadConnection } from '../sneakernet/stored-rows.js';
import type Database from 'better-sqlite3';

/** A station database connection (db.ts's `Db`, named here without importing db.ts, which re-exports ImageRow). */
type Db = Database.Database;

const ADVICE = 'run "ecluse store check" and restore the home from its last backup if the catalog is damaged';

const nullableText = z.string().nullable();
const nullableCount = z.number().int().nonnegative().nullable();
const flag = z.number().int().min(0).max(1);

/** A row of `images` as stored. */
export const imageRow = z.object({
  id: z.string(),
  name: nullableText,
  status: z.string(),
  visibility: z.string(),
  protected: flag,
  os_hidden: flag,
  checksum: nullableText,
  os_hash_algo: nullableText,
  os_hash_value: nullableText,
  size: nullableCount,
  virtual_size: nullableCount,
  container_format: nullableText,
  disk_format: nullableText,
  min_disk: z.number().int(),
  min_ram: z.number().int(),
  owner: nullableText,
  created_at: z.string(),
  updated_at: z.string(),
  /** File name under <home>/store/images, null while the image has no data. */
  file: nullableText,
  /** 'bundle': came through a verified bundle; 'api': created through the Glance API. */
  origin: z.enum(['bundle', 'api']),
  bundle_id: nullableText,
  artifact_name: nullableText,
  artifact_version: nullableText,
  sha256: nullableText,
  /** Extra properties: a flat JSON object of strings. */
  properties: z.string(),
  /** A JSON array of strings. */
  tags: z.string(),
});
export type ImageRow = z.output<typeof imageRow>;

const images = storedRows('images', imageRow, ADVICE);

/** The image with this id, or undefined. */
export function imageById(db: ReadConnection, id: string): ImageRow | undefined {
  return images.get(db, 'SELECT * FROM images WHERE id = ?', id);
}

/** Rows read by a statement built on the fly (the Glance list's filters and sort), checked. */
export function checkedImages(rows: unknown[]): ImageRow[] {
  return rows.map((row) => images.check(row));
}

const statusOnly = storedRows('images', imageRow.pick({ status: true }), ADVICE);

/** The status of an image now (after a write raced with ours), or undefined once it is gone. */
export function imageStatus(db: ReadConnection, id: string): string | undefined {
  return statusOnly.get(db, 'SELECT status FROM images WHERE id = ?', id)?.status;
}

const diskFormatOnly = storedRows('images', imageRow.pick({ disk_format: true }), ADVICE);

export function imageDiskFormat(db: ReadConnection, id: string): string | null {
  return diskFormatOnly.get(db, 'SELECT disk_format FROM images WHERE id = ?', id)?.disk_format ?? null;
}

const storedFile = storedRows(
  'images',
  imageRow.pick({ id: true, file: true, size: true, checksum: true, os_hash_value: true, sha256: true }),
  ADVICE,
);
export type StoredFileRow = ReturnType<typeof storedFile.check>;

/** Every image with what the catalog says of its file (the store check compares the files with it). */
export function storedFiles(db: ReadConnection): StoredFileRow[] {
  return storedFile.all(db, 'SELECT id, file, size, checksum, os_hash_value, sha256 FROM images');
}

const fileName = storedRows('images', z.object({ file: z.string() }), ADVICE);

/** The names of every file the catalog points to under the store (the others are orphans). */
export function catalogFileNames(db: ReadConnection): Set<string> {
  return new Set(fileName.all(db, 'SELECT file FROM images WHERE file IS NOT NULL').map((r) => r.file));
}

/** The file of the oldest image with these bytes (a delta's base), or undefined when the store has none. */
export function fileWithContent(db: ReadConnection, sha256: string, size: number): string | undefined {
  return fileName.get(
    db,
    'SELECT file FROM images WHERE sha256 = ? AND size = ? AND file IS NOT NULL ORDER BY created_at LIMIT 1',
    sha256,
    size,
  )?.file;
}

const versionOnly = storedRows('images', z.object({ version: nullableText }), ADVICE);

/** The versions of an artifact the store holds from bundles (any order, each once). */
export function bundledVersions(db: ReadConnection, name: string): string[] {
  return versionOnly
    .all(
      db,
      "SELECT DISTINCT artifact_version AS version FROM images WHERE origin = 'bundle' AND artifact_name = ?",
      name,
    )
    .flatMap((r) => (r.version === null ? [] : [r.version]));
}

const one = storedRows('images', z.object({ held: z.literal(1) }), ADVICE);

/** Whether the store holds this very artifact (name, version and SHA-256) from a bundle, with its data. */
export function holdsArtifact(db: ReadConnection, a: { name: string; version: string; sha256: string }): boolean {
  return (
    one.get(
      db,
      "SELECT 1 AS held FROM images WHERE origin = 'bundle' AND artifact_name = ? AND artifact_version = ? AND sha256 = ? AND file IS NOT NULL LIMIT 1",
      a.name,
      a.version,
      a.sha256,
    ) !== undefined
  );
}

const heldArtifact = storedRows(
  'images',
  z.object({ name: z.string(), version: z.string(), sha256: z.string() }),
  ADVICE,
);

/** What a receipt's inventory lists: each artifact from a bundle whose data the store holds, by name and version. */
export function heldArtifacts(db: ReadConnection): Array<{ name: string; version: string; sha256: string }> {
  return heldArtifact.all(
    db,
    "SELECT DISTINCT artifact_name AS name, artifact_version AS version, sha256 FROM images WHERE origin = 'bundle' AND artifact_name IS NOT NULL AND sha256 IS NOT NULL AND file IS NOT NULL ORDER BY name, version",
  );
}

/** An image a bundle brought always has its name, version, size and digest. */
const bundleImage = storedRows(
  'images',
  z.object({
    id: z.string(),
    name: z.string(),
    artifact_version: z.string(),
    size: z.number().int().nonnegative(),
    sha256: z.string(),
  }),
  ADVICE,
);

/** The images a bundle brought, by name. */
export function imagesOfBundle(db: ReadConnection, bundleId: string): Array<ReturnType<typeof bundleImage.check>> {
  return bundleImage.all(
    db,
    'SELECT id, name, artifact_version, size, sha256 FROM images WHERE bundle_id = ? ORDER BY name',
    bundleId,
  );
}

const history = storedRows(
  'images',
  imageRow.pick({
    id: true,
    name: true,
    artifact_version: true,
    bundle_id: true,
    sha256: true,
    size: true,
    disk_format: true,
    os_hidden: true,
    status: true,
    created_at: true,
  }),
  ADVICE,
);
export type ImageHistoryRow = ReturnType<typeof history.check>;

/** The versions of one artifact the store has held, newest first (the web view's version history). */
export function artifactImages(db: ReadConnection, name: string): ImageHistoryRow[] {
  return history.all(
    db,
    `SELECT id, name, artifact_version, bundle_id, sha256, size, disk_format, os_hidden, status, created_at
     FROM images WHERE artifact_name = ? ORDER BY created_at DESC, id LIMIT 500`,
    name,
  );
}

const artifactName = storedRows(
  'images',
  z.object({ name: z.string(), versions: z.number().int().positive(), latest: z.string() }),
  ADVICE,
);

/** Each artifact name the store has held, with how many versions and when the latest came. */
export function artifactNames(db: ReadConnection): Array<{ name: string; versions: number; latest: string }> {
  return artifactName.all(
    db,
    `SELECT artifact_name AS name, count(*) AS versions, max(created_at) AS latest FROM images
     WHERE artifact_name IS NOT NULL GROUP BY artifact_name ORDER BY artifact_name LIMIT 1000`,
  );
}

const activeTotals = storedRows(
  'images',
  z.object({ n: z.number().int().nonnegative(), bytes: z.number().int().nonnegative() }),
  ADVICE,
);

/** How many active images the store serves and their bytes. */
export function activeImageTotals(db: ReadConnection): { images: number; bytes: number } {
  const t = activeTotals.get(
    db,
    "SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM images WHERE status = 'active'",
  );
  return { images: t?.n ?? 0, bytes: t?.bytes ?? 0 };
}

const label = storedRows('images', imageRow.pick({ name: true, artifact_version: true }), ADVICE);

/** "name version" of an image for a status line, or undefined when it is gone. */
export function imageLabel(db: ReadConnection, id: string): string | undefined {
  const r = label.get(db, 'SELECT name, artifact_version FROM images WHERE id = ?', id);
  return r ? `${r.name ?? id} ${r.artifact_version ?? ''}`.trim() : undefined;
}

// ----------------------------------------------------------------------------------------------------------------
// Writes: the Glance API's create, edits, upload states and delete; promote's bundle images.

/** Enters a whole row (an image created through the API; the caller turns a duplicate id into Glance's 409). */
export function insertImage(db: Db, row: ImageRow): void {
  const cols = Object.keys(row) as (keyof ImageRow)[];
  db.prepare(`INSERT INTO images (${cols.join(', ')}) VALUES (${cols.map((c) => `@${c}`).join(', ')})`).run(row);
}

/** What a bundle brings for one image; it enters `active`, public unless its placement says otherwise. */
export interface BundleImage {
  id: string;
  name: string;
  version: string;
  visibility: string;
  checksum: string | null;
  os_hash_value: string;
  size: number;
  virtual_size: number | null;
  container_format: string;
  disk_format: string;
  file: string;
  bundleId: string;
  sha256: string;
  properties: Record<string, string>;
  at: string;
}

/**
 * Enters an image a bundle brought, hiding the older versions of the same artifact (`os_hidden`: still served by id,
 * no longer listed by default).
 */
export function insertBundleImage(db: Db, i: BundleImage): void {
  db.prepare(
    "UPDATE images SET os_hidden = 1, updated_at = ? WHERE origin = 'bundle' AND artifact_name = ? AND os_hidden = 0",
  ).run(i.at, i.name);
  db.prepare(
    `INSERT INTO images (id, name, status, visibility, protected, os_hidden, checksum, os_hash_algo, os_hash_value,
       size, virtual_size, container_format, disk_format, min_disk, min_ram, owner, created_at, updated_at, file,
       origin, bundle_id, artifact_name, artifact_version, sha256, properties, tags)
     VALUES (?, ?, 'active', ?, 0, 0, ?, 'sha512', ?, ?, ?, ?, ?, 0, 0, NULL, ?, ?, ?, 'bundle', ?, ?, ?, ?, ?, '[]')`,
  ).run(
    i.id,
    i.name,
    i.visibility,
    i.checksum,
    i.os_hash_value,
    i.size,
    i.virtual_size,
    i.container_format,
    i.disk_format,
    i.at,
    i.at,
    i.file,
    i.bundleId,
    i.name,
    i.version,
    i.sha256,
    JSON.stringify(i.properties),
  );
}

/** What PATCH may change (values already validated by the Glance API, image-attrs.ts). */
export interface ImageEdits {
  name: unknown;
  visibility: unknown;
  protected: boolean;
  os_hidden: boolean;
  container_format: unknown;
  disk_format: unknown;
  min_disk: unknown;
  min_ram: unknown;
  owner: unknown;
  tags: unknown;
  properties: Record<string, string>;
}

export function saveImageEdits(db: Db, id: string, e: ImageEdits, at: string): void {
  db.prepare(
    `UPDATE images SET name = ?, visibility = ?, protected = ?, os_hidden = ?, container_format = ?, disk_format = ?,
       min_disk = ?, min_ram = ?, owner = ?, tags = ?, properties = ?, updated_at = ? WHERE id = ?`,
  ).run(
    e.name,
    e.visibility,
    e.protected ? 1 : 0,
    e.os_hidden ? 1 : 0,
    e.container_format,
    e.disk_format,
    e.min_disk,
    e.min_ram,
    e.owner,
    JSON.stringify(e.tags),
    JSON.stringify(e.properties),
    at,
    id,
  );
}

export function deleteImage(db: Db, id: string): void {
  db.prepare('DELETE FROM images WHERE id = ?').run(id);
}

export function setImageTags(db: Db, id: string, tags: string[], at: string): void {
  db.prepare('UPDATE images SET tags = ?, updated_at = ? WHERE id = ?').run(JSON.stringify(tags), at, id);
}

export function setImageStatus(db: Db, id: string, status: string, at: string): void {
  db.prepare('UPDATE images SET status = ?, updated_at = ? WHERE id = ?').run(status, at, id);
}

/** queued → saving for one upload; false when the image was not queued (another upload, or not uploadable). */
export function claimForUpload(db: Db, id: string, at: string): boolean {
  return (
    db.prepare("UPDATE images SET status = 'saving', updated_at = ? WHERE id = ? AND status = 'queued'").run(at, id)
      .changes === 1
  );
}

/** saving → active with the uploaded data; false when the image is gone or changed meanwhile. */
export function completeUpload(
  db: Db,
  id: string,
  d: { size: number; virtualSize: number | null; md5: string; sha512: string; sha256: string; file: string },
  at: string,
): boolean {
  return (
    db
      .prepare(
        `UPDATE images SET status = 'active', size = ?, virtual_size = ?, checksum = ?, os_hash_algo = 'sha512',
           os_hash_value = ?, sha256 = ?, file = ?, updated_at = ? WHERE id = ? AND status = 'saving'`,
      )
      .run(d.size, d.virtualSize, d.md5, d.sha512, d.sha256, d.file, at, id).changes === 1
  );
}

/** saving → queued: an upload that failed or was cut (the client uploads again). */
export function abandonUpload(db: Db, id: string, at: string): void {
  db.prepare("UPDATE images SET status = 'queued', updated_at = ? WHERE id = ? AND status = 'saving'").run(at, id);
}

/** Every API upload left `saving` by a crash goes back to queued; returns how many. */
export function abandonAllUploads(db: Db, at: string): number {
  return db
    .prepare("UPDATE images SET status = 'queued', updated_at = ? WHERE status = 'saving' AND origin = 'api'")
    .run(at).changes;
}
