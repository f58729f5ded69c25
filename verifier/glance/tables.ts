/**
 * The tables of the Glance API and of staging into a site's Glance (issue 5), added to the catalog by
 * verifier/db.ts's MODULE_SCHEMAS. A leaf module: it imports nothing, so db.ts can import it without a cycle.
 *
 *   api_tokens     API tokens (`ecluse token create`): only the sha256 of each token is kept
 *   image_members  image sharing (`openstack image add project`): project ids are opaque strings
 *   glance_targets the site's own Glance services an import pushes verified images into (`ecluse target add`)
 *   target_pushes  one row per image pushed (or tried) to a target, with the remote image id
 */
export const GLANCE_SCHEMA = `
CREATE TABLE IF NOT EXISTS api_tokens (
  id          TEXT PRIMARY KEY,
  sha256      TEXT NOT NULL UNIQUE,
  role        TEXT NOT NULL CHECK (role IN ('reader', 'admin')),
  name        TEXT,
  created_at  TEXT NOT NULL,
  revoked_at  TEXT
);

CREATE TABLE IF NOT EXISTS image_members (
  image_id    TEXT NOT NULL,
  member_id   TEXT NOT NULL,
  status      TEXT NOT NULL DEFAULT 'pending',
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  PRIMARY KEY (image_id, member_id)
);

CREATE TABLE IF NOT EXISTS glance_targets (
  name        TEXT PRIMARY KEY,
  url         TEXT NOT NULL,
  -- JSON: {"type":"none"} | {"type":"password",...} | {"type":"application_credential",...}
  auth        TEXT NOT NULL,
  -- JSON: {"visibility": "keep" | "public" | ..., "signatures": "at-create" | "after-upload"}
  options     TEXT NOT NULL DEFAULT '{}',
  created_at  TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS target_pushes (
  target      TEXT NOT NULL,
  image_id    TEXT NOT NULL,
  remote_id   TEXT,
  status      TEXT NOT NULL,
  message     TEXT NOT NULL DEFAULT '',
  attempts    INTEGER NOT NULL DEFAULT 0,
  updated_at  TEXT NOT NULL,
  PRIMARY KEY (target, image_id)
);
`;
