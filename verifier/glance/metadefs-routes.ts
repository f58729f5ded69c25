/**
 * `/v2/metadefs/...`: Glance's metadata definitions API over metadefs-store.ts. Everyone reads public namespaces
 * (private ones: their owner's project and admins); only admins write, as in Glance's default policy.
 */
import express from 'express';
import { z } from 'zod';
import { METADEF_NAME, namespaceDocument } from './metadefs-schema.js';
import { glanceTime, type Db } from '../db.js';
import { authOf, requireAdmin } from './auth.js';
import { seesAll } from './access.js';
import { readJson } from './body.js';
import { badRequest, conflict, forbidden, GlanceHttpError, sendJson } from './errors.js';
import { METADEF_SCHEMAS } from './metadefs-schemas.js';
import {
  allNamespaces,
  allResourceTypes,
  ensureResourceType,
  itemNamed,
  itemsOf,
  namespaceNamed,
  putItem,
  type ItemKind,
  type ItemRow,
  type NamespaceRow,
} from './metadefs-store.js';

const NAME = METADEF_NAME;
const DEF = z.record(z.string(), z.unknown());

const namespaceBody = namespaceDocument({ visibility: 'private', protected: false });
const objectBody = z.looseObject({
  name: NAME,
  description: z.string().max(8192).nullish(),
  required: z.array(z.string().max(80)).max(100).default([]),
  properties: z.record(NAME, DEF).default({}),
});
const propertyBody = z.looseObject({ name: NAME, title: z.string().max(255), type: z.string().max(32) });
const tagBody = z.looseObject({ name: NAME });
const associationBody = z.looseObject({
  name: NAME,
  prefix: z.string().max(80).nullish(),
  properties_target: z.string().max(80).nullish(),
});

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const i = r.error.issues[0];
    throw badRequest(
      `Provided object does not match schema: ${i?.path.join('.') || 'body'}: ${i?.message ?? 'invalid'}`,
    );
  }
  return r.data;
}

const nsNotFound = (ns: string) => new GlanceHttpError(404, `Metadata definition namespace=${ns} was not found.`);
const itemNotFound = (kind: string, name: string, ns: string) =>
  new GlanceHttpError(404, `Metadata definition ${kind}=${name} not found in namespace=${ns}.`);
const strip = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined));

export function metadefRoutes(db: Db): express.Router {
  const router = express.Router({ caseSensitive: true });
  const base = '/v2/metadefs/namespaces';

  /** The namespace if the request may see it (a private one: its owner's project, admins, écluse's tokens). */
  const findNs = (res: express.Response, ns: string): NamespaceRow => {
    const row = namespaceNamed(db, ns);
    if (!row) throw nsNotFound(ns);
    const doc = JSON.parse(row.doc) as { visibility: string; owner?: string };
    const ctx = authOf(res);
    if (doc.visibility !== 'public' && !seesAll(ctx) && doc.owner !== ctx.project) throw nsNotFound(ns);
    return row;
  };
  const items = (ns: string, kind: ItemKind): ItemRow[] => itemsOf(db, ns, kind);
  const findItem = (ns: string, kind: ItemKind, name: string): ItemRow => {
    const row = itemNamed(db, ns, kind, name);
    if (!row) throw itemNotFound(kind, name, ns);
    return row;
  };
  const addItem = (ns: string, kind: ItemKind, name: string, doc: object) => {
    try {
      putItem(db, ns, kind, name, doc);
    } catch (e) {
      if (String((e as { code?: string }).code).startsWith('SQLITE_CONSTRAINT')) {
        throw conflict(`A metadata definition ${kind} with name=${name} already exists in namespace=${ns}.`);
      }
      throw e;
    }
  };
  const touch = (ns: string) =>
    db.prepare('UPDATE metadef_namespaces SET updated_at = ? WHERE namespace = ?').run(glanceTime(), ns);

  const association = (r: ItemRow) => ({
    name: r.name,
    ...strip(JSON.parse(r.doc) as Record<string, unknown>),
    created_at: r.created_at,
    updated_at: r.updated_at,
  });
  const objectRecord = (r: ItemRow) => ({
    name: r.name,
    ...(JSON.parse(r.doc) as object),
    created_at: r.created_at,
    updated_at: r.updated_at,
    self: `${base}/${r.namespace}/objects/${r.name}`,
    schema: 'v2/schemas/metadefs/object',
  });
  const propertyRecord = (r: ItemRow) => ({ name: r.name, ...(JSON.parse(r.doc) as object) });
  const tagRecord = (r: ItemRow) => ({ name: r.name, created_at: r.created_at, updated_at: r.updated_at });
  const propertiesOf = (ns: string) =>
    Object.fromEntries(items(ns, 'property').map((r) => [r.name, JSON.parse(r.doc) as object]));

  const nsRecord = (row: NamespaceRow, full: boolean) => {
    const assoc = items(row.namespace, 'resource_type').map(association);
    const rec: Record<string, unknown> = {
      namespace: row.namespace,
      ...strip(JSON.parse(row.doc) as Record<string, unknown>),
      created_at: row.created_at,
      updated_at: row.updated_at,
      self: `${base}/${row.namespace}`,
      schema: '/v2/schemas/metadefs/namespace',
    };
    if (assoc.length) rec.resource_type_associations = assoc;
    if (full) {
      const props = propertiesOf(row.namespace);
      if (Object.keys(props).length) rec.properties = props;
      const objs = items(row.namespace, 'object').map((r) => ({ name: r.name, ...(JSON.parse(r.doc) as object) }));
      if (objs.length) rec.objects = objs;
      const tags = items(row.namespace, 'tag').map((r) => ({ name: r.name }));
      if (tags.length) rec.tags = tags;
    }
    return rec;
  };

  // Namespaces
  router.get(base, (req, res) => {
    const params = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
    const types = params.get('resource_types')?.split(',').filter(Boolean);
    const visibility = params.get('visibility');
    const rows = allNamespaces(db).filter((r) => {
      try {
        findNs(res, r.namespace);
      } catch {
        return false;
      }
      if (visibility && (JSON.parse(r.doc) as { visibility: string }).visibility !== visibility) return false;
      return !types || items(r.namespace, 'resource_type').some((a) => types.includes(a.name));
    });
    sendJson(res, 200, {
      namespaces: rows.map((r) => nsRecord(r, false)),
      first: base,
      schema: '/v2/schemas/metadefs/namespaces',
    });
  });
  router.post(base, async (req, res) => {
    requireAdmin(res, 'add_metadef_namespace');
    const b = parse(namespaceBody, await readJson(req));
    const at = glanceTime();
    const doc = strip({
      display_name: b.display_name,
      description: b.description,
      visibility: b.visibility,
      protected: b.protected,
      owner: b.owner ?? authOf(res).project ?? 'admin',
    });
    db.transaction(() => {
      if (namespaceNamed(db, b.namespace)) {
        throw conflict(`Namespace ${b.namespace} already exists`);
      }
      db.prepare('INSERT INTO metadef_namespaces (namespace, doc, created_at, updated_at) VALUES (?, ?, ?, ?)').run(
        b.namespace,
        JSON.stringify(doc),
        at,
        at,
      );
      for (const a of b.resource_type_associations) {
        ensureResourceType(db, a.name, at);
        addItem(
          b.namespace,
          'resource_type',
          a.name,
          strip({ prefix: a.prefix, properties_target: a.properties_target }),
        );
      }
      for (const [name, p] of Object.entries(b.properties)) addItem(b.namespace, 'property', name, p);
      for (const o of b.objects) {
        const { name, ...rest } = o;
        addItem(b.namespace, 'object', name, { required: [], properties: {}, ...rest });
      }
      for (const t of b.tags) addItem(b.namespace, 'tag', t.name, {});
    }).immediate();
    sendJson(res, 201, nsRecord(findNs(res, b.namespace), true));
  });
  router.get(`${base}/:ns`, (req, res) => sendJson(res, 200, nsRecord(findNs(res, req.params.ns), true)));
  router.put(`${base}/:ns`, async (req, res) => {
    requireAdmin(res, 'modify_metadef_namespace');
    const row = findNs(res, req.params.ns);
    const b = parse(namespaceBody, await readJson(req));
    const old = JSON.parse(row.doc) as Record<string, unknown>;
    const doc = strip({
      ...old,
      display_name: b.display_name,
      description: b.description,
      visibility: b.visibility,
      protected: b.protected,
      owner: b.owner ?? old.owner,
    });
    db.transaction(() => {
      if (b.namespace !== row.namespace) {
        if (namespaceNamed(db, b.namespace)) {
          throw conflict(`Namespace ${b.namespace} already exists`);
        }
        db.prepare('INSERT INTO metadef_namespaces (namespace, doc, created_at, updated_at) VALUES (?, ?, ?, ?)').run(
          b.namespace,
          row.doc,
          row.created_at,
          row.updated_at,
        );
        db.prepare('UPDATE metadef_items SET namespace = ? WHERE namespace = ?').run(b.namespace, row.namespace);
        db.prepare('DELETE FROM metadef_namespaces WHERE namespace = ?').run(row.namespace);
      }
      db.prepare('UPDATE metadef_namespaces SET doc = ?, updated_at = ? WHERE namespace = ?').run(
        JSON.stringify(doc),
        glanceTime(),
        b.namespace,
      );
    }).immediate();
    sendJson(res, 200, nsRecord(findNs(res, b.namespace), false));
  });
  router.delete(`${base}/:ns`, (req, res) => {
    requireAdmin(res, 'delete_metadef_namespace');
    const row = findNs(res, req.params.ns);
    if ((JSON.parse(row.doc) as { protected?: boolean }).protected) {
      throw forbidden(`Namespace ${row.namespace} is protected and cannot be deleted.`);
    }
    db.prepare('DELETE FROM metadef_namespaces WHERE namespace = ?').run(row.namespace);
    res.status(204).end();
  });

  // Objects and properties: one definition each, renamed by PUT with another name.
  const definitions = (
    kind: 'object' | 'property',
    segment: string,
    body: z.ZodType<{ name: string }>,
    record: (r: ItemRow) => object,
  ) => {
    router.post(`${base}/:ns/${segment}`, async (req, res) => {
      requireAdmin(res, `add_metadef_${kind}`);
      const ns = findNs(res, req.params.ns).namespace;
      const b = parse(body, await readJson(req));
      const { name, ...rest } = b as Record<string, unknown> & { name: string };
      addItem(ns, kind, name, kind === 'object' ? strip(rest) : rest);
      touch(ns);
      sendJson(res, 201, record(findItem(ns, kind, name)));
    });
    router.get(`${base}/:ns/${segment}/:name`, (req, res) => {
      const ns = findNs(res, req.params.ns).namespace;
      sendJson(res, 200, record(findItem(ns, kind, req.params.name)));
    });
    router.put(`${base}/:ns/${segment}/:name`, async (req, res) => {
      requireAdmin(res, `modify_metadef_${kind}`);
      const ns = findNs(res, req.params.ns).namespace;
      const cur = findItem(ns, kind, req.params.name);
      const b = parse(body, await readJson(req));
      const { name, ...rest } = b as Record<string, unknown> & { name: string };
      db.transaction(() => {
        db.prepare('DELETE FROM metadef_items WHERE namespace = ? AND kind = ? AND name = ?').run(ns, kind, cur.name);
        addItem(ns, kind, name, kind === 'object' ? strip(rest) : rest);
        db.prepare('UPDATE metadef_items SET created_at = ? WHERE namespace = ? AND kind = ? AND name = ?').run(
          cur.created_at,
          ns,
          kind,
          name,
        );
      }).immediate();
      sendJson(res, 200, record(findItem(ns, kind, name)));
    });
    router.delete(`${base}/:ns/${segment}/:name`, (req, res) => {
      requireAdmin(res, `delete_metadef_${kind}`);
      const ns = findNs(res, req.params.ns).namespace;
      findItem(ns, kind, req.params.name);
      db.prepare('DELETE FROM metadef_items WHERE namespace = ? AND kind = ? AND name = ?').run(
        ns,
        kind,
        req.params.name,
      );
      res.status(204).end();
    });
  };
  router.get(`${base}/:ns/objects`, (req, res) => {
    const ns = findNs(res, req.params.ns).namespace;
    sendJson(res, 200, { objects: items(ns, 'object').map(objectRecord), schema: 'v2/schemas/metadefs/objects' });
  });
  router.get(`${base}/:ns/properties`, (req, res) => {
    const ns = findNs(res, req.params.ns).namespace;
    sendJson(res, 200, { properties: propertiesOf(ns) });
  });
  definitions('object', 'objects', objectBody, objectRecord);
  definitions('property', 'properties', propertyBody, propertyRecord);

  // Tags
  router.get(`${base}/:ns/tags`, (req, res) => {
    const ns = findNs(res, req.params.ns).namespace;
    sendJson(res, 200, { tags: items(ns, 'tag').map(tagRecord) });
  });
  router.post(`${base}/:ns/tags`, async (req, res) => {
    requireAdmin(res, 'add_metadef_tags');
    const ns = findNs(res, req.params.ns).namespace;
    const b = parse(z.looseObject({ tags: z.array(tagBody).max(1000) }), await readJson(req));
    // As Glance without `X-Openstack-Append: True`: the given tags replace the namespace's.
    const append = req.get('x-openstack-append')?.toLowerCase() === 'true';
    db.transaction(() => {
      if (!append) db.prepare("DELETE FROM metadef_items WHERE namespace = ? AND kind = 'tag'").run(ns);
      for (const t of b.tags) addItem(ns, 'tag', t.name, {});
    }).immediate();
    sendJson(res, 201, { tags: b.tags.map((t) => tagRecord(findItem(ns, 'tag', t.name))) });
  });
  router.delete(`${base}/:ns/tags`, (req, res) => {
    requireAdmin(res, 'delete_metadef_tags');
    const ns = findNs(res, req.params.ns).namespace;
    db.prepare("DELETE FROM metadef_items WHERE namespace = ? AND kind = 'tag'").run(ns);
    res.status(204).end();
  });
  router.post(`${base}/:ns/tags/:name`, (req, res) => {
    requireAdmin(res, 'add_metadef_tag');
    const ns = findNs(res, req.params.ns).namespace;
    parse(NAME, req.params.name);
    addItem(ns, 'tag', req.params.name, {});
    sendJson(res, 201, tagRecord(findItem(ns, 'tag', req.params.name)));
  });
  router.get(`${base}/:ns/tags/:name`, (req, res) => {
    const ns = findNs(res, req.params.ns).namespace;
    sendJson(res, 200, tagRecord(findItem(ns, 'tag', req.params.name)));
  });
  router.put(`${base}/:ns/tags/:name`, async (req, res) => {
    requireAdmin(res, 'modify_metadef_tag');
    const ns = findNs(res, req.params.ns).namespace;
    findItem(ns, 'tag', req.params.name);
    const b = parse(tagBody, await readJson(req));
    if (b.name !== req.params.name) {
      if (itemNamed(db, ns, 'tag', b.name)) {
        throw conflict(`A metadata tag with name=${b.name} already exists in namespace=${ns}.`);
      }
      db.prepare(
        "UPDATE metadef_items SET name = ?, updated_at = ? WHERE namespace = ? AND kind = 'tag' AND name = ?",
      ).run(b.name, glanceTime(), ns, req.params.name);
    }
    sendJson(res, 200, tagRecord(findItem(ns, 'tag', b.name)));
  });
  router.delete(`${base}/:ns/tags/:name`, (req, res) => {
    requireAdmin(res, 'delete_metadef_tag');
    const ns = findNs(res, req.params.ns).namespace;
    findItem(ns, 'tag', req.params.name);
    db.prepare("DELETE FROM metadef_items WHERE namespace = ? AND kind = 'tag' AND name = ?").run(ns, req.params.name);
    res.status(204).end();
  });

  // Resource types and a namespace's associations with them
  router.get('/v2/metadefs/resource_types', (_req, res) => {
    const rows = allResourceTypes(db);
    sendJson(res, 200, { resource_types: rows });
  });
  router.get(`${base}/:ns/resource_types`, (req, res) => {
    const ns = findNs(res, req.params.ns).namespace;
    sendJson(res, 200, { resource_type_associations: items(ns, 'resource_type').map(association) });
  });
  router.post(`${base}/:ns/resource_types`, async (req, res) => {
    requireAdmin(res, 'add_metadef_resource_type_association');
    const ns = findNs(res, req.params.ns).namespace;
    const b = parse(associationBody, await readJson(req));
    ensureResourceType(db, b.name);
    addItem(ns, 'resource_type', b.name, strip({ prefix: b.prefix, properties_target: b.properties_target }));
    sendJson(res, 201, association(findItem(ns, 'resource_type', b.name)));
  });
  router.delete(`${base}/:ns/resource_types/:name`, (req, res) => {
    requireAdmin(res, 'remove_metadef_resource_type_association');
    const ns = findNs(res, req.params.ns).namespace;
    findItem(ns, 'resource_type', req.params.name);
    db.prepare("DELETE FROM metadef_items WHERE namespace = ? AND kind = 'resource_type' AND name = ?").run(
      ns,
      req.params.name,
    );
    res.status(204).end();
  });

  // Schemas (metadefs-schemas.ts)
  router.get('/v2/schemas/metadefs/:kind', (req, res) => {
    const s = METADEF_SCHEMAS[req.params.kind];
    if (!s || !Object.hasOwn(METADEF_SCHEMAS, req.params.kind)) throw new GlanceHttpError(404, undefined);
    sendJson(res, 200, s);
  });

  return router;
}
