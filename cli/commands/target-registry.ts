/**
 * The registry side of `ecluse target`: adding a site registry (`target add registry URL [--authfile F]`), listing
 * and pushing container images to it. cli/commands/target.ts dispatches here for the `registry` kind.
 */
import { EcluseError } from '../../sneakernet/errors.js';
import { appendAudit } from '../../verifier/audit.js';
import type { Site } from '../../verifier/site.js';
import { credentialsFor, type RegistryCredentials } from '../../verifier/targets/auth-file.js';
import type { PushResult } from '../../verifier/targets/push.js';
import { imageOfKey, pushContainerImage } from '../../verifier/targets/registry-push.js';
import {
  addRegistryTarget,
  describeRegistryAuth,
  listRegistryTargets,
  targetLocation,
  type RegistryTarget,
} from '../../verifier/targets/registry-targets.js';
import { pushRecords } from '../../verifier/targets/targets.js';

/** The distribution spec's repository path components (a prefix in the target's URL must be one). */
const PATH_COMPONENT = /^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$/;

function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h);
}

/** Checks a registry target's URL: http(s), no credentials, query or fragment, a valid repository prefix. */
export function checkRegistryUrl(url: string, insecure: boolean): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new EcluseError('E_USAGE', `"${url}" is not a URL: give the registry as https://HOST[:PORT][/PREFIX]`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new EcluseError(
      'E_USAGE',
      `"${url}" is not an http(s) URL: give the registry as https://HOST[:PORT][/PREFIX]`,
    );
  }
  if (u.username || u.password || u.search || u.hash) {
    throw new EcluseError(
      'E_USAGE',
      `"${url}" carries credentials, a query or a fragment: give credentials with --authfile, and the URL as https://HOST[:PORT][/PREFIX]`,
    );
  }
  if (u.protocol === 'http:' && !isLoopback(u.hostname) && !insecure) {
    throw new EcluseError(
      'E_USAGE',
      `${u.host} would be pushed to over plain HTTP: use https://, or add --insecure-registry if that registry has no TLS`,
    );
  }
  const prefix = targetLocation(url).prefix;
  if (prefix && !prefix.split('/').every((c) => PATH_COMPONENT.test(c))) {
    throw new EcluseError(
      'E_USAGE',
      `"${prefix}" is not a repository prefix (lowercase letters, digits and . _ - between them, parts joined by /)`,
    );
  }
  return url.replace(/\/+$/, '');
}

/** `target add registry URL`: checks, reads the credentials for the registry from the auth file, records, audits. */
export function addRegistry(
  site: Site,
  o: { name: string; url: string; authFile?: string; insecure: boolean; nameTaken: boolean },
): { json: object; human: string } {
  const url = checkRegistryUrl(o.url, o.insecure);
  if (o.nameTaken) {
    throw new EcluseError('E_USAGE', `a target named ${o.name} exists already (ecluse target remove ${o.name})`);
  }
  const { host, prefix } = targetLocation(url);
  let credentials: RegistryCredentials | undefined;
  if (o.authFile) {
    credentials = credentialsFor(o.authFile, host, prefix);
    if (!credentials) {
      throw new EcluseError(
        'E_INPUT',
        `${o.authFile} holds no credentials for ${host}: log in first ("podman login --authfile ${o.authFile} ${host}"), or leave --authfile out for a registry that takes anonymous pushes`,
        { check: 'auth-file' },
      );
    }
  }
  const t = site.db
    .transaction(() => {
      const added = addRegistryTarget(site.db, { name: o.name, url, credentials, authFile: o.authFile });
      appendAudit(site.db, {
        kind: 'target.added',
        outcome: 'info',
        message: `registry target ${o.name} added: ${added.url} (${credentials ? `credentials of ${credentials.username}` : 'anonymous'})`,
        details: { name: o.name, kind: 'registry', url: added.url, auth: describeRegistryAuth(added.auth) },
      });
      return added;
    })
    .immediate();
  return {
    json: { target: { name: t.name, kind: 'registry', url: t.url, auth: describeRegistryAuth(t.auth) } },
    human: `target ${t.name}: ${t.url} (${t.auth.type === 'credentials' ? `credentials of ${t.auth.username}` : 'anonymous'}); container images imported from now on are pushed into it`,
  };
}

/** The registry targets as `target list` shows them. */
export function registryListing(site: Site): {
  name: string;
  kind: 'registry';
  url: string;
  auth: Record<string, string>;
  pushes: ReturnType<typeof pushRecords>;
}[] {
  return listRegistryTargets(site.db).map((t) => ({
    name: t.name,
    kind: 'registry' as const,
    url: t.url,
    auth: describeRegistryAuth(t.auth),
    pushes: pushRecords(site.db, t.name),
  }));
}

/** `target push` for registry targets: `image` (`REPOSITORY:TAG`) or every push that is not done. */
export async function pushToRegistries(site: Site, targets: RegistryTarget[], image?: string): Promise<PushResult[]> {
  const results: PushResult[] = [];
  for (const t of targets) {
    const keys = image
      ? [image]
      : pushRecords(site.db, t.name)
          .filter((p) => p.status !== 'active')
          .map((p) => p.image_id);
    for (const key of keys) {
      const found = imageOfKey(site.db, key);
      if (!found) {
        results.push({
          target: t.name,
          imageId: key,
          remoteId: null,
          ok: false,
          attempts: 0,
          message: `no container image ${key} in the registry store (name it REPOSITORY:TAG, as "ecluse status --json" lists them)`,
        });
        continue;
      }
      results.push(await pushContainerImage(site.db, site.home.registryBlobs, t, found));
    }
  }
  return results;
}
