/**
 * The table of the site's own container registries (`ecluse target add registry`), added to the catalog by
 * verifier/db.ts's MODULE_SCHEMAS. A leaf module: it imports nothing, so db.ts can import it without a cycle. Their
 * pushes are recorded in `target_pushes` with the Glance targets' (verifier/glance/tables.ts).
 */
export const REGISTRY_TARGETS_SCHEMA = `
CREATE TABLE IF NOT EXISTS registry_targets (
  name        TEXT PRIMARY KEY,
  -- http(s)://host[:port][/prefix]: images are pushed to <prefix>/<repository>
  url         TEXT NOT NULL,
  -- JSON: {"type":"none"} | {"type":"credentials","username":...,"password":...,"from":<auth file>}
  auth        TEXT NOT NULL,
  created_at  TEXT NOT NULL
);
`;
