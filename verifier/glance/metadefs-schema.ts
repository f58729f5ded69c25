/**
 * The shape of a metadata-definition namespace document: the same for Debian's /etc/glance/metadefs files (loaded
 * once) and for a namespace created through the API; only the defaults differ (files: public and protected, as
 * `glance-manage db_load_metadefs` loads them; the API: private and unprotected, as Glance creates them).
 */
import { z } from 'zod';

export const METADEF_NAME = z.string().min(1).max(80);
const definition = z.record(z.string(), z.unknown());

export function namespaceDocument(defaults: { visibility: 'public' | 'private'; protected: boolean }) {
  return z.looseObject({
    namespace: METADEF_NAME,
    display_name: z.string().max(80).nullish(),
    description: z.string().max(8192).nullish(),
    visibility: z.enum(['public', 'private']).default(defaults.visibility),
    protected: z.boolean().default(defaults.protected),
    owner: z.string().max(255).nullish(),
    resource_type_associations: z
      .array(
        z.looseObject({
          name: METADEF_NAME,
          prefix: z.string().max(80).nullish(),
          properties_target: z.string().max(80).nullish(),
        }),
      )
      .max(100)
      .default([]),
    properties: z.record(METADEF_NAME, definition).default({}),
    objects: z
      .array(
        z.looseObject({
          name: METADEF_NAME,
          description: z.string().max(8192).nullish(),
          required: z.array(z.string().max(255)).max(100).optional(),
          properties: z.record(METADEF_NAME, definition).optional(),
        }),
      )
      .max(1000)
      .default([]),
    tags: z
      .array(z.looseObject({ name: METADEF_NAME }))
      .max(1000)
      .default([]),
  });
}
