/**
 * Glance targets: the site's own Glance services that imports push verified images into (`ecluse target add glance
 * URL`). Stored in the station's catalog (`glance_targets`); credentials stay on the import station, like its keys.
 */
import { glanceTime, type Db } from '../db.js';
import type { TargetAuth } from './client.js';

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

export function listTargets(db: Db): Target[] {
  const rows = db.prepare('SELECT * FROM glance_targets ORDER BY name').all() as {
    name: string;
    url: string;
    auth: string;
    options: string;
    created_at: string;
  }[];
  return rows.map((r) => ({
    name: r.name,
    url: r.url,
    auth: JSON.parse(r.auth) as TargetAuth,
    options: { visibility: 'keep', signatures: 'at-create', ...(JSON.parse(r.options) as Partial<TargetOptions>) },
    created_at: r.created_at,
  }));
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

export interface PushRecord {
  target: string;
  image_id: string;
  remote_id: string | null;
  status: 'pending' | 'active' | 'failed';
  message: string;
  attempts: number;
  updated_at: string;
}

export function pushRecords(db: Db, target?: string): PushRecord[] {
  return (
    target
      ? db.prepare('SELECT * FROM target_pushes WHERE target = ? ORDER BY updated_at, image_id').all(target)
      : db.prepare('SELECT * FROM target_pushes ORDER BY target, updated_at, image_id').all()
  ) as PushRecord[];
}
