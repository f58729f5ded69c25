/**
 * Glance targets: the site's own Glance services that imports push verified images into (`ecluse target add glance
 * URL`). Stored in the station's catalog (`glance_targets`); credentials stay on the import station, like its keys.
 */
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { jsonText } from '../../sneakernet/stored-rows.js';
import { glanceTime, type Db } from '../db.js';
import type { TargetAuth } from './client.js';

export { pushRecords, type PushRecord } from './push-records.js';

export type TargetVisibility = 'keep' | 'public' | 'private' | 'shared' | 'community';
export const TARGET_VISIBILITIES: readonly TargetVisibility[] = ['keep', 'public', 'private', 'shared', 'community'];

export type TargetSignatures = 'at-create' | 'after-upload';
export const TARGET_SIGNATURES: readonly TargetSignatures[] = ['at-create', 'after-upload'];

export interface TargetOptions {
  /** The visibility of pushed images: the catalog's (`keep`, usually public: needs an admin in the target) or this. */
  visibility: TargetVisibility;
  /**
   * When the img_signature* properties are sent: `at-create` (the target Glance verifies the upload against the
   * certificate in its Barbican: the strongest), or `after-upload` (added once active, for a Glance without a key
   * manager; Nova still verifies at boot).
   */
  signatures: TargetSignatures;
}

export interface Target {
  name: string;
  url: string;
  auth: TargetAuth;
  options: TargetOptions;
  created_at: string;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function validTargetName(name: string): boolean {
  return NAME.test(name);
}

export function addTarget(
  db: Db,
  t: { name: string; url: string; auth: TargetAuth; options?: Partial<TargetOptions> },
): Target {
  const target: Target = {
    name: t.name,
    url: t.url.replace(/\/+$/, ''),
    auth: t.auth,
    options: { visibility: t.options?.visibility ?? 'keep', signatures: t.options?.signatures ?? 'at-create' },
    created_at: glanceTime(),
  };
  db.prepare('INSERT INTO glance_targets (name, url, auth, options, created_at) VALUES (?, ?, ?, ?, ?)').run(
    target.name,
    target.url,
    JSON.stringify(target.auth),
    JSON.stringify(target.options),
    target.created_at,
  );
  return target;
}

/** A `glance_targets` row as stored: `auth` and `options` are JSON text, checked as they are read. */
const json = jsonText;
const authSchema: z.ZodType<TargetAuth> = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({
    type: z.literal('password'),
    authUrl: z.string(),
    username: z.string(),
    password: z.string(),
    userDomain: z.string(),
    project: z.string(),
    projectDomain: z.string(),
  }),
  z.strictObject({
    type: z.literal('application_credential'),
    authUrl: z.string(),
    id: z.string(),
    secret: z.string(),
  }),
]);
const optionsSchema = z.strictObject({
  visibility: z.enum(TARGET_VISIBILITIES as [TargetVisibility, ...TargetVisibility[]]).default('keep'),
  signatures: z.enum(TARGET_SIGNATURES as [TargetSignatures, ...TargetSignatures[]]).default('at-create'),
});
const targetRow = z.object({
  name: z.string(),
  url: z.string(),
  auth: json(authSchema),
  options: json(optionsSchema),
  created_at: z.string(),
});

export function listTargets(db: Db): Target[] {
  const rows: unknown[] = db.prepare('SELECT * FROM glance_targets ORDER BY name').all();
  return rows.map((row) => {
    const r = targetRow.safeParse(row);
    if (r.success) return r.data;
    const name = (row as { name?: unknown }).name;
    const issue = r.error.issues[0];
    const where = issue ? `${issue.path.join('.')}: ${issue.message}` : 'unreadable';
    throw new EcluseError(
      'E_STORE',
      `the stored settings of target ${String(name)} are malformed (${where}): remove it with "ecluse target remove ${String(name)}" and add it again`,
      { check: 'catalog-row', table: 'glance_targets' },
    );
  });
}

export function removeTarget(db: Db, name: string): boolean {
  return db.prepare('DELETE FROM glance_targets WHERE name = ?').run(name).changes === 1;
}

/** The auth settings without secrets, for listings and the audit log. */
export function describeAuth(auth: TargetAuth): Record<string, string> {
  switch (auth.type) {
    case 'none':
      return { type: 'none' };
    case 'password':
      return {
        type: 'password',
        authUrl: auth.authUrl,
        username: auth.username,
        userDomain: auth.userDomain,
        project: auth.project,
        projectDomain: auth.projectDomain,
      };
    case 'application_credential':
      return { type: 'application_credential', authUrl: auth.authUrl, id: auth.id };
  }
}
