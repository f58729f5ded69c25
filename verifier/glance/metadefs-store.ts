/**
 * Glance's metadata definitions (metadefs: namespaces and their objects, properties, tags, and the resource types they
 * apply to), which Horizon and Nova read to offer image properties. Kept in the catalog, one row per thing with its
 * definition as JSON. At the first `ecluse serve` the definitions the distribution ships (Debian's glance-common:
 * /etc/glance/metadefs/*.json, the files `glance-manage db_load_metadefs` loads into the real Glance) are loaded
 * once, each file parsed strictly and bounded in size; `ECLUSE_METADEFS_DIR` names another folder, or none with "".
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { storedRows } from '../../sneakernet/stored-rows.js';
import { namespaceDocument } from './metadefs-schema.js';
import { appendAudit } from '../audit.js';
import { getSetting, glanceTime, setSetting, type Db } from '../db.js';
export { METADEFS_SCHEMA } from './metadefs-tables.js';

export const ITEM_KINDS = ['object', 'property', 'tag', 'resource_type'] as const;
export type ItemKind = (typeof ITEM_KINDS)[number];

const ADVICE = 'delete the namespace (openstack image metadef namespace delete NAME) and create it again';

/** A row of `metadef_namespaces`: the namespace's document as JSON text. */
const namespaceRow = z.object({
  namespace: z.string(),
  doc: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type NamespaceRow = z.output<typeof namespaceRow>;
const namespaces = storedRows('metadef_namespaces', namespaceRow, ADVICE);

/** A row of `metadef_items`: an object, property, tag or resource type association of a namespace. */
const itemRow = namespaceRow.extend({ kind: z.enum(ITEM_KINDS), name: z.string() });
export type ItemRow = z.output<typeof itemRow>;
const items = storedRows('metadef_items', itemRow, ADVICE);

const resourceTypeRow = z.object({ name: z.string(), created_at: z.string(), updated_at: z.string() });
const resourceTypes = storedRows('metadef_resource_types', resourceTypeRow, ADVICE);

export function namespaceNamed(db: Db, namespace: string): NamespaceRow | undefined {
  return namespaces.get(db, 'SELECT * FROM metadef_namespaces WHERE namespace = ?', namespace);
}

/** Every namespace, oldest first. */
export function allNamespaces(db: Db): NamespaceRow[] {
  return namespaces.all(db, 'SELECT * FROM metadef_namespaces ORDER BY created_at, namespace');
}

/** The items of one kind in a namespace, by name. */
export function itemsOf(db: Db, namespace: string, kind: ItemKind): ItemRow[] {
  return items.all(db, 'SELECT * FROM metadef_items WHERE namespace = ? AND kind = ? ORDER BY name', namespace, kind);
}

export function itemNamed(db: Db, namespace: string, kind: ItemKind, name: string): ItemRow | undefined {
  return items.get(
    db,
    'SELECT * FROM metadef_items WHERE namespace = ? AND kind = ? AND name = ?',
    namespace,
    kind,
    name,
  );
}

/** Every resource type known, by name. */
export function allResourceTypes(db: Db): Array<z.output<typeof resourceTypeRow>> {
  return resourceTypes.all(db, 'SELECT * FROM metadef_resource_types ORDER BY name');
}

export const DEFAULT_METADEFS_DIR = '/etc/glance/metadefs';
const MAX_FILE = 1024 * 1024;
const MAX_FILES = 500;

const fileSchema = namespaceDocument({ visibility: 'public', protected: true });

export function ensureResourceType(db: Db, name: string, at = glanceTime()): void {
  db.prepare('INSERT OR IGNORE INTO metadef_resource_types (name, created_at, updated_at) VALUES (?, ?, ?)').run(
    name,
    at,
    at,
  );
}

export function putItem(db: Db, namespace: string, kind: ItemKind, name: string, doc: object, at = glanceTime()): void {
  db.prepare(
    `INSERT INTO metadef_items (namespace, kind, name, doc, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
  ).run(namespace, kind, name, JSON.stringify(doc), at, at);
}

/**
 * Loads the distribution's definitions once (the setting `metadefs_loaded` remembers it). A file that does not parse
 * is left out and named in the audit; the others load. Returns how many namespaces were loaded.
 */
export function loadDistributionMetadefs(
  db: Db,
  dir = process.env.ECLUSE_METADEFS_DIR ?? DEFAULT_METADEFS_DIR,
): number {
  if (getSetting(db, 'metadefs_loaded') !== undefined || dir === '' || !fs.existsSync(dir)) return 0;
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .slice(0, MAX_FILES);
  const skipped: string[] = [];
  let loaded = 0;
  db.transaction(() => {
    const at = glanceTime();
    for (const f of files) {
      const file = path.join(dir, f);
      let ns: z.infer<typeof fileSchema>;
      try {
        const st = fs.lstatSync(file);
        if (!st.isFile() || st.size > MAX_FILE) {
          skipped.push(f); // not a regular file of at most 1 MiB
          continue;
        }
        ns = fileSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
      } catch {
        skipped.push(f);
        continue;
      }
      const exists = db.prepare('SELECT 1 FROM metadef_namespaces WHERE namespace = ?').get(ns.namespace);
      if (exists) continue;
      const doc = {
        display_name: ns.display_name,
        description: ns.description,
        visibility: ns.visibility,
        protected: ns.protected,
        owner: ns.owner ?? 'admin',
      };
      db.prepare('INSERT INTO metadef_namespaces (namespace, doc, created_at, updated_at) VALUES (?, ?, ?, ?)').run(
        ns.namespace,
        JSON.stringify(doc),
        at,
        at,
      );
      for (const a of ns.resource_type_associations) {
        ensureResourceType(db, a.name, at);
        const { name, ...rest } = a;
        putItem(db, ns.namespace, 'resource_type', name, rest, at);
      }
      for (const [name, p] of Object.entries(ns.properties)) putItem(db, ns.namespace, 'property', name, p, at);
      for (const o of ns.objects) {
        const { name, ...rest } = o;
        putItem(db, ns.namespace, 'object', name, { required: [], properties: {}, ...rest }, at);
      }
      for (const t of ns.tags) putItem(db, ns.namespace, 'tag', t.name, {}, at);
      loaded++;
    }
    setSetting(db, 'metadefs_loaded', at);
    appendAudit(db, {
      kind: 'glance.metadefs.load',
      outcome: 'info',
      message: `metadata definitions: ${loaded} namespace(s) loaded from ${dir}${skipped.length ? `; left out (unreadable): ${skipped.join(', ')}` : ''}`,
      details: { dir, loaded, skipped },
    });
  })();
  return loaded;
}
