/**
 * Tables of the tamper-evident audit log (issue 6), owned by verifier/audit/ and listed in db.ts MODULE_SCHEMAS.
 *
 * - `audit_leaf`: one row per audit event, in log order: its index in the Merkle tree, the `audit.seq` it hashes, and
 *   the leaf hash SHA-256(0x00 || canonical event bytes).
 * - `audit_tree`: the append frontier (the perfect subtrees of the tree so far), so an append costs O(log n).
 * - `audit_checkpoint`: every signed checkpoint (origin, size, root, time, key id, signature).
 * - `audit_export`: the checkpoint of each export, so the next export proves consistency from it.
 * - `web_user`, `web_session`: accounts and sessions of the web view.
 * Indexes on `audit` serve the timeline filters with keyset pagination on `seq` (the core `audit_bundle` index
 * already serves the bundle filter: an index on a column of a rowid table ends in the rowid, here `seq`).
 */
export const AUDIT_LOG_SCHEMA = `
CREATE TABLE IF NOT EXISTS audit_leaf (
  idx  INTEGER PRIMARY KEY,
  seq  INTEGER NOT NULL UNIQUE,
  leaf BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_tree (
  id       INTEGER PRIMARY KEY CHECK (id = 1),
  size     INTEGER NOT NULL,
  frontier TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_checkpoint (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  origin    TEXT NOT NULL,
  size      INTEGER NOT NULL,
  root      TEXT NOT NULL,
  time      TEXT NOT NULL,
  key_id    TEXT NOT NULL,
  signature TEXT NOT NULL,
  reason    TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_export (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  at            TEXT NOT NULL,
  dir           TEXT NOT NULL,
  checkpoint_id INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS web_user (
  name       TEXT PRIMARY KEY,
  role       TEXT NOT NULL,
  salt       TEXT NOT NULL,
  hash       TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS web_session (
  id_hash    TEXT PRIMARY KEY,
  name       TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_kind_seq ON audit (kind, seq);
CREATE INDEX IF NOT EXISTS audit_outcome_seq ON audit (outcome, seq);
CREATE INDEX IF NOT EXISTS audit_artifact_seq ON audit (artifact, seq);
CREATE INDEX IF NOT EXISTS audit_media_seq ON audit (media, seq);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
`;
