/**
 * The catalog's `artifacts` table (created in catalog.ts), all of its SQL: what the export station holds, one row per
 * (name, version), its bytes under `blobs/sha256/<hex>`. Rows are checked as they are read (a row the schema does not
 * describe is E_STORE naming the column, never an unchecked cast).
 */
import { z } from 'zod';
import { storedRows, type ReadConnection } from '../sneakernet/stored-rows.js';
import type { RelayDb } from './relay-db.js';

const ADVICE = 'remove that artifact (ecluse relay remove NAME@VERSION) and add it again, or restore the station home';

const text = z.string();
const optionalText = z.string().nullable();

/** A row of `artifacts` as stored. */
export const artifactRow = z.object({
  id: z.number().int().positive(),
  name: text,
  version: text,
  type: text,
  size: z.number().int().nonnegative(),
  sha256: text,
  sha512: text,
  /** Glance's `checksum`; null only for a row older than the column whose blob was gone. */
  md5: optionalText.optional(),
  disk_format: text,
  container_format: text,
  /** Glance properties, a JSON object. */
  properties: text,
  vendor: optionalText,
  source: text,
  added_at: text,
  /** Unused since schema 1 (bundle_artifacts says what each bundle carried). */
  exported_in: optionalText,
  /** Vendor evidence (JSON text, docs/FORMAT.md 4.5) kept for an artifact fetched from a feed. */
  evidence: optionalText.optional(),
  feed: optionalText.optional(),
});
export type ArtifactRow = z.output<typeof artifactRow>;

const artifacts = storedRows('artifacts', artifactRow, ADVICE);

/** What `relay add` and a feed fetch enter (the bytes are already in the blob store). */
export interface NewArtifact {
  /** `vm-image` (the default) or `ecluse-package` (4.10; its `packages` row is the caller's). */
  type?: 'vm-image' | 'ecluse-package';
  name: string;
  version: string;
  size: number;
  sha256: string;
  sha512: string;
  md5: string;
  diskFormat: string;
  containerFormat: string;
  properties: Record<string, string>;
  vendor: string | null;
  source: string;
  addedAt: string;
  evidence: string | null;
  feed: string | null;
}

/** Enters an artifact; returns its row as stored. */
export function insertArtifact(db: RelayDb, a: NewArtifact): ArtifactRow {
  return artifacts.check(
    db
      .prepare(
        `INSERT INTO artifacts (name, version, type, size, sha256, sha512, md5, disk_format, container_format, properties,
         vendor, source, added_at, evidence, feed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      )
      .get(
        a.name,
        a.version,
        a.type ?? 'vm-image',
        a.size,
        a.sha256,
        a.sha512,
        a.md5,
        a.diskFormat,
        a.containerFormat,
        JSON.stringify(a.properties),
        a.vendor,
        a.source,
        a.addedAt,
        a.evidence,
        a.feed,
      ),
  );
}

/** Removes an artifact's row (its blob is the caller's business). */
export function deleteArtifact(db: RelayDb, id: number): void {
  db.prepare('DELETE FROM artifacts WHERE id = ?').run(id);
}

export function setMd5(db: RelayDb, id: number, md5: string): void {
  db.prepare('UPDATE artifacts SET md5 = ? WHERE id = ?').run(md5, id);
}

/** Every artifact, in the order they were added. */
export function artifactsByAge(db: ReadConnection): ArtifactRow[] {
  return artifacts.all(db, 'SELECT * FROM artifacts ORDER BY id');
}

/** Every artifact, by name then age (listings). */
export function artifactsByName(db: ReadConnection): ArtifactRow[] {
  return artifacts.all(db, 'SELECT * FROM artifacts ORDER BY name, id');
}

export function artifactNamed(db: ReadConnection, name: string, version: string): ArtifactRow | undefined {
  return artifacts.get(db, 'SELECT * FROM artifacts WHERE name = ? AND version = ?', name, version);
}

/** The oldest artifact with these bytes. */
export function artifactWithBytes(db: ReadConnection, sha256: string): ArtifactRow | undefined {
  return artifacts.get(db, 'SELECT * FROM artifacts WHERE sha256 = ? ORDER BY id LIMIT 1', sha256);
}

/** The other VM-image releases of an artifact (other bytes, same name), newest first: candidate delta bases. */
export function otherReleases(db: ReadConnection, name: string, sha256: string): ArtifactRow[] {
  return artifacts.all(
    db,
    "SELECT * FROM artifacts WHERE name = ? AND sha256 != ? AND type = 'vm-image' ORDER BY id DESC",
    name,
    sha256,
  );
}

const withoutMd5 = storedRows('artifacts', artifactRow.pick({ id: true, sha256: true }), ADVICE);

/** Rows from before the md5 column whose md5 is still unknown. */
export function artifactsWithoutMd5(db: ReadConnection): Array<{ id: number; sha256: string }> {
  return withoutMd5.all(db, 'SELECT id, sha256 FROM artifacts WHERE md5 IS NULL');
}
