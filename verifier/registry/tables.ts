/**
 * The tables of the import station's container registry (issue 18), added to the catalog by verifier/db.ts's
 * MODULE_SCHEMAS. A leaf module: it imports nothing, so db.ts can import it without a cycle.
 *
 *   registry_blobs          every blob the registry store holds (`<home>/registry/blobs/sha256/<hex>`), verified
 *                           by its digest before it was promoted; what a receipt's `inventory.blobs` lists
 *   container_images        one row per oci-image artifact accepted: served as <repository>:<tag> and by digest
 *   container_image_blobs   the blobs each image needs, in the signed order (top manifest first)
 */
export const REGISTRY_SCHEMA = `
CREATE TABLE IF NOT EXISTS registry_blobs (
  digest      TEXT PRIMARY KEY CHECK (digest GLOB 'sha256:*' AND length(digest) = 71),
  size        INTEGER NOT NULL CHECK (size >= 0),
  bundle_id   TEXT NOT NULL,
  stored_at   TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS container_images (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  repository  TEXT NOT NULL,
  tag         TEXT NOT NULL,
  version     TEXT NOT NULL,
  name        TEXT NOT NULL,
  digest      TEXT NOT NULL,
  media_type  TEXT NOT NULL,
  -- JSON array of {os, architecture, variant?}
  platforms   TEXT NOT NULL DEFAULT '[]',
  -- bytes of every blob the image needs (carried or already held)
  size        INTEGER NOT NULL,
  -- the artifact's sha256 as signed (of the blobs it carried), what a receipt's inventory lists
  sha256      TEXT NOT NULL,
  bundle_id   TEXT NOT NULL,
  accepted_at TEXT NOT NULL,
  UNIQUE (repository, version)
);
CREATE INDEX IF NOT EXISTS container_images_tag ON container_images (repository, tag);
CREATE INDEX IF NOT EXISTS container_images_digest ON container_images (digest);

CREATE TABLE IF NOT EXISTS container_image_blobs (
  image_id    INTEGER NOT NULL REFERENCES container_images (id),
  position    INTEGER NOT NULL,
  digest      TEXT NOT NULL REFERENCES registry_blobs (digest),
  size        INTEGER NOT NULL,
  media_type  TEXT NOT NULL,
  PRIMARY KEY (image_id, position)
);
CREATE INDEX IF NOT EXISTS container_image_blobs_digest ON container_image_blobs (digest);
`;
