/**
 * The site's own container registries that each import pushes verified images into (`ecluse target add registry`),
 * all of the SQL of `registry_targets`. The credentials are copied from the operator's containers auth file when the
 * target is added (the daemon's sandbox cannot read an operator's home, and a file can move): the file's entry for
 * the registry, nothing else of it. Pushes are recorded in `target_pushes` beside the Glance targets' (one name
 * space for targets: a name is a Glance target or a registry target, never both).
 */
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { glanceTime, type Db } from '../db.js';
import type { RegistryCredentials } from './auth-file.js';

export type RegistryTargetAuth =
  { type: 'none' } | { type: 'credentials'; username: string; password: string; from: string };

export interface RegistryTarget {
  name: string;
  /** `http(s)://host[:port]` plus the repository prefix when there is one. */
  url: string;
  auth: RegistryTargetAuth;
  created_at: string;
}

/** Where the target's URL points: the origin requests go to, and the path images are pushed under. */
export function targetLocation(url: string): { origin: string; host: string; prefix: string } {
  const u = new URL(url);
  return { origin: u.origin, host: u.host, prefix: u.pathname.replace(/^\/+|\/+$/g, '') };
}

/** The repository an image of `repository` is pushed to at the target. */
export function remoteRepository(target: RegistryTarget, repository: string): string {
  const { prefix } = targetLocation(target.url);
  return prefix ? `${prefix}/${repository}` : repository;
}

export function credentialsOf(auth: RegistryTargetAuth): RegistryCredentials | undefined {
  return auth.type === 'credentials' ? { username: auth.username, password: auth.password } : undefined;
}

export function addRegistryTarget(
  db: Db,
  t: { name: string; url: string; credentials?: RegistryCredentials; authFile?: string },
): RegistryTarget {
  const auth: RegistryTargetAuth = t.credentials
    ? { type: 'credentials', ...t.credentials, from: t.authFile ?? '' }
    : { type: 'none' };
  const target: RegistryTarget = { name: t.name, url: t.url.replace(/\/+$/, ''), auth, created_at: glanceTime() };
  db.prepare('INSERT INTO registry_targets (name, url, auth, created_at) VALUES (?, ?, ?, ?)').run(
    target.name,
    target.url,
    JSON.stringify(target.auth),
    target.created_at,
  );
  return target;
}

const authSchema: z.ZodType<RegistryTargetAuth> = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({ type: z.literal('credentials'), username: z.string(), password: z.string(), from: z.string() }),
]);
const row = z.object({
  name: z.string(),
  url: z.string().regex(/^https?:\/\//),
  auth: z.string().transform((text, ctx): RegistryTargetAuth => {
    try {
      return authSchema.parse(JSON.parse(text));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not the JSON of registry credentials' });
      return z.NEVER;
    }
  }),
  created_at: z.string(),
});

export function listRegistryTargets(db: Db): RegistryTarget[] {
  const rows: unknown[] = db.prepare('SELECT * FROM registry_targets ORDER BY name').all();
  return rows.map((r) => {
    const parsed = row.safeParse(r);
    if (parsed.success) return parsed.data;
    const name = String((r as { name?: unknown }).name);
    const issue = parsed.error.issues[0];
    throw new EcluseError(
      'E_STORE',
      `the stored settings of registry target ${name} are malformed (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'unreadable'}): remove it with "ecluse target remove ${name}" and add it again`,
      { check: 'catalog-row', table: 'registry_targets' },
    );
  });
}

export function removeRegistryTarget(db: Db, name: string): boolean {
  return db.prepare('DELETE FROM registry_targets WHERE name = ?').run(name).changes === 1;
}

/** The auth settings without the password, for listings and the audit log. */
export function describeRegistryAuth(auth: RegistryTargetAuth): Record<string, string> {
  return auth.type === 'none' ? { type: 'none' } : { type: 'credentials', username: auth.username, from: auth.from };
}
