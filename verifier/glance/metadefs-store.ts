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
import { namespaceDocument } from './metadefs-schema.js';
import { appendAudit } from '../audit.js';
import { getSetting, glanceTime, setSetting, type Db } from '../db.js';
export { METADEFS_SCHEMA } from './metadefs-tables.js';

export type ItemKind = 'object' | 'property' | 'tag' | 'resource_type';

export interface NamespaceRow {
  namespace: string;
  doc: string;
  created_at: string;
  updated_at: string;
}

export interface ItemRow {
  namespace: string;
  kind: ItemKind;
  name: string;
  doc: string;
  created_at: string;
  updated_at: string;
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
