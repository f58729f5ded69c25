/** The tables of Glance's metadata definitions (metadefs-store.ts). A leaf module: db.ts imports it. */
export const METADEFS_SCHEMA = `
CREATE TABLE IF NOT EXISTS metadef_namespaces (
  namespace   TEXT PRIMARY KEY,
  doc         TEXT NOT NULL,        -- JSON: display_name, description, visibility, protected, owner
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS metadef_items (
  namespace   TEXT NOT NULL REFERENCES metadef_namespaces(namespace) ON DELETE CASCADE,
  kind        TEXT NOT NULL CHECK (kind IN ('object', 'property', 'tag', 'resource_type')),
  name        TEXT NOT NULL,
  doc         TEXT NOT NULL,        -- JSON: the definition, as the API shows it, without name and times
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL,
  PRIMARY KEY (namespace, kind, name)
);
CREATE TABLE IF NOT EXISTS metadef_resource_types (
  name        TEXT PRIMARY KEY,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);
`;
