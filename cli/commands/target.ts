/**
 * `ecluse target add|list|remove|push`: the site's own Glance services and container registries that each import
 * pushes verified images into (VM images to Glance targets, container images to registry targets: the registry side
 * is in target-registry.ts). Secrets are read from an environment variable or a file (never from the command line,
 * which `ps` shows).
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { EcluseError } from '../../sneakernet/errors.js';
import { appendAudit } from '../../verifier/audit.js';
import { openSite } from '../../verifier/site.js';
import type { TargetAuth } from '../../verifier/targets/client.js';
import { pushImage } from '../../verifier/targets/push.js';
import {
  addTarget,
  describeAuth,
  listTargets,
  pushRecords,
  removeTarget,
  TARGET_SIGNATURES,
  TARGET_VISIBILITIES,
  validTargetName,
  type TargetSignatures,
  type TargetVisibility,
} from '../../verifier/targets/targets.js';
import { resolveHome } from '../home.js';
import { report, type CommandContext } from '../output.js';
import { addRegistry, pushToRegistries, registryListing } from './target-registry.js';
import { imageOfKey } from '../../verifier/targets/registry-push.js';
import { listRegistryTargets, removeRegistryTarget } from '../../verifier/targets/registry-targets.js';

interface AddOptions {
  name?: string;
  auth: string;
  authUrl?: string;
  username?: string;
  passwordEnv?: string;
  passwordFile?: string;
  userDomain: string;
  project?: string;
  projectDomain: string;
  appCredId?: string;
  appCredSecretEnv?: string;
  appCredSecretFile?: string;
  visibility: string;
  signatures: string;
  authfile?: string;
  insecureRegistry?: boolean;
}

/** Options that only mean something for one kind of target (given for the other, they are a mistake). */
function checkKindOptions(kind: 'glance' | 'registry', o: AddOptions): void {
  const glanceOnly: [string, boolean][] = [
    ['--auth', o.auth !== 'none'],
    ['--auth-url', o.authUrl !== undefined],
    ['--username', o.username !== undefined],
    ['--password-env', o.passwordEnv !== undefined],
    ['--password-file', o.passwordFile !== undefined],
    ['--project', o.project !== undefined],
    ['--app-cred-id', o.appCredId !== undefined],
    ['--app-cred-secret-env', o.appCredSecretEnv !== undefined],
    ['--app-cred-secret-file', o.appCredSecretFile !== undefined],
    ['--visibility', o.visibility !== 'keep'],
    ['--signatures', o.signatures !== 'at-create'],
  ];
  const registryOnly: [string, boolean][] = [
    ['--authfile', o.authfile !== undefined],
    ['--insecure-registry', o.insecureRegistry === true],
  ];
  const wrong = (kind === 'registry' ? glanceOnly : registryOnly).filter(([, given]) => given).map(([n]) => n);
  if (wrong.length > 0) {
    throw new EcluseError(
      'E_USAGE',
      kind === 'registry'
        ? `${wrong.join(', ')} ${wrong.length > 1 ? 'are' : 'is'} for Glance targets: a registry target takes --authfile (a containers auth file) and --insecure-registry`
        : `${wrong.join(', ')} ${wrong.length > 1 ? 'are' : 'is'} for registry targets: a Glance target takes --auth and its options`,
    );
  }
}

function secret(what: string, env: string | undefined, file: string | undefined): string {
  if (env) {
    const v = process.env[env];
    if (!v) throw new EcluseError('E_USAGE', `${what}: the environment variable ${env} is not set`);
    return v;
  }
  if (file) {
    try {
      return fs.readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (e) {
      throw new EcluseError('E_INPUT', `${what}: cannot read ${file}: ${(e as Error).message}`);
    }
  }
  throw new EcluseError('E_USAGE', `${what} is needed: give it through --*-env VAR or --*-file FILE`);
}

function need(v: string | undefined, option: string): string {
  if (!v) throw new EcluseError('E_USAGE', `${option} is needed for this --auth`);
  return v;
}

function authFrom(o: AddOptions): TargetAuth {
  switch (o.auth) {
    case 'none':
      return { type: 'none' };
    case 'password':
      return {
        type: 'password',
        authUrl: need(o.authUrl, '--auth-url'),
        username: need(o.username, '--username'),
        password: secret('the password', o.passwordEnv, o.passwordFile),
        userDomain: o.userDomain,
        project: need(o.project, '--project'),
        projectDomain: o.projectDomain,
      };
    case 'application-credential':
      return {
        type: 'application_credential',
        authUrl: need(o.authUrl, '--auth-url'),
        id: need(o.appCredId, '--app-cred-id'),
        secret: secret('the application credential secret', o.appCredSecretEnv, o.appCredSecretFile),
      };
    default:
      throw new EcluseError('E_USAGE', `--auth must be none, password or application-credential (got "${o.auth}")`);
  }
}

export function registerTarget(program: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const target = program
    .command('target')
    .description("the site's own Glance services and container registries that imports push verified images into");

  target
    .command('add')
    .description(
      'add a target: every VM image (glance) or container image (registry) imported from now on is pushed into it',
    )
    .argument('<KIND>', 'glance (VM images) or registry (container images)')
    .argument(
      '<URL>',
      'the Image API endpoint (https://glance.site.example:9292), or the registry with an optional repository prefix (https://registry.site.example/mirror)',
    )
    .option('--name <NAME>', 'a name for this target (default: the kind)')
    .option('--auth <TYPE>', 'none (a lab Glance), password or application-credential (Keystone v3)', 'none')
    .option('--auth-url <URL>', 'Keystone, e.g. https://keystone.site.example:5000/v3')
    .option('--username <USER>', 'Keystone user (password auth)')
    .option('--password-env <VAR>', 'environment variable holding the password')
    .option('--password-file <FILE>', 'file holding the password')
    .option('--user-domain <DOMAIN>', "the user's domain", 'Default')
    .option('--project <PROJECT>', 'project to scope the token to (password auth)')
    .option('--project-domain <DOMAIN>', "the project's domain", 'Default')
    .option('--app-cred-id <ID>', 'application credential id')
    .option('--app-cred-secret-env <VAR>', 'environment variable holding the application credential secret')
    .option('--app-cred-secret-file <FILE>', 'file holding the application credential secret')
    .option(
      '--visibility <V>',
      "visibility of pushed images: keep (the store's; public needs an admin there), public, private, shared, community",
      'keep',
    )
    .option(
      '--signatures <WHEN>',
      'at-create (the target verifies the upload with its Barbican) or after-upload (a Glance without a key manager)',
      'at-create',
    )
    .option(
      '--authfile <FILE>',
      "registry: a containers auth file (podman login --authfile FILE HOST); the registry's entry is copied when the target is added",
    )
    .option('--insecure-registry', 'registry: allow plain HTTP to a registry that is not on loopback')
    .addHelpText(
      'after',
      '\nExamples:\n  ecluse target add glance http://127.0.0.1:9292 --name lab\n' +
        '  OS_PASSWORD=... ecluse target add glance https://glance:9292 --auth password --auth-url https://keystone:5000/v3 \\\n' +
        '      --username ecluse --password-env OS_PASSWORD --project images\n' +
        '  ecluse target add registry https://registry.site.example/mirror --authfile /etc/ecluse/registry-auth.json\n' +
        '      (acme/app:1.4 imported is pushed as registry.site.example/mirror/acme/app:1.4, with the vendor digest)\n',
    )
    .action(async (kind: string, url: string, o: AddOptions) => {
      await report(ctx(), async () => {
        if (kind !== 'glance' && kind !== 'registry') {
          throw new EcluseError('E_USAGE', `a target is glance or registry (got "${kind}")`);
        }
        checkKindOptions(kind, o);
        const name = o.name ?? kind;
        if (!validTargetName(name)) throw new EcluseError('E_USAGE', `invalid target name "${name}"`);
        if (kind === 'registry') {
          const s = openSite(resolveHome(home()));
          try {
            const nameTaken = [...listTargets(s.db), ...listRegistryTargets(s.db)].some((t) => t.name === name);
            return addRegistry(s, {
              name,
              url,
              authFile: o.authfile,
              insecure: o.insecureRegistry === true,
              nameTaken,
            });
          } finally {
            s.db.close();
          }
        }
        if (!/^https?:\/\/[^\s/]+/.test(url)) throw new EcluseError('E_USAGE', `"${url}" is not an http(s) URL`);
        const auth = authFrom(o);
        if (!(TARGET_VISIBILITIES as readonly string[]).includes(o.visibility)) {
          throw new EcluseError('E_USAGE', `--visibility must be one of ${TARGET_VISIBILITIES.join(', ')}`);
        }
        if (!(TARGET_SIGNATURES as readonly string[]).includes(o.signatures)) {
          throw new EcluseError('E_USAGE', `--signatures must be one of ${TARGET_SIGNATURES.join(', ')}`);
        }
        const s = openSite(resolveHome(home()));
        try {
          if ([...listTargets(s.db), ...listRegistryTargets(s.db)].some((t) => t.name === name)) {
            throw new EcluseError('E_USAGE', `a target named ${name} exists already (ecluse target remove ${name})`);
          }
          const t = s.db
            .transaction(() => {
              const added = addTarget(s.db, {
                name,
                url,
                auth,
                options: { visibility: o.visibility as TargetVisibility, signatures: o.signatures as TargetSignatures },
              });
              appendAudit(s.db, {
                kind: 'target.added',
                outcome: 'info',
                message: `Glance target ${name} added: ${added.url} (${auth.type})`,
                details: { name, url: added.url, auth: describeAuth(auth), options: added.options },
              });
              return added;
            })
            .immediate();
          return {
            json: {
              target: { name: t.name, kind: 'glance', url: t.url, auth: describeAuth(t.auth), options: t.options },
            },
            human: `target ${t.name}: ${t.url} (${t.auth.type}); images imported from now on are pushed into it`,
          };
        } finally {
          s.db.close();
        }
      });
    });

  target
    .command('list')
    .description('list targets and the images pushed to them')
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse target list --json\n')
    .action(async () => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const targets = [
            ...listTargets(s.db).map((t) => ({
              name: t.name,
              kind: 'glance' as const,
              url: t.url,
              auth: describeAuth(t.auth),
              pushes: pushRecords(s.db, t.name),
            })),
            ...registryListing(s),
          ].sort((a, b) => a.name.localeCompare(b.name));
          const human: string[] = [];
          for (const t of targets) {
            human.push(`${t.name}  ${t.kind}  ${t.url}  (${t.auth.type})`);
            for (const p of t.pushes) human.push(`  ${p.image_id} → ${p.remote_id ?? '-'}  ${p.status}  ${p.message}`);
          }
          return { json: { targets }, human: human.length ? human : 'no targets' };
        } finally {
          s.db.close();
        }
      });
    });

  target
    .command('remove')
    .description('remove a target (images already pushed stay in it)')
    .argument('<NAME>', 'the target name')
    .addHelpText('after', '\nExample:\n  ecluse target remove site-glance\n')
    .action(async (name: string) => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          const kind = removeTarget(s.db, name) ? 'Glance' : removeRegistryTarget(s.db, name) ? 'registry' : null;
          if (!kind) throw new EcluseError('E_NOT_FOUND', `no target named ${name} (see "ecluse target list")`);
          appendAudit(s.db, { kind: 'target.removed', outcome: 'info', message: `${kind} target ${name} removed` });
          return { json: { name, removed: true }, human: `target ${name} removed` };
        } finally {
          s.db.close();
        }
      });
    });

  target
    .command('push')
    .description('push images now: the failed ones (default), or --image ID, to every target or --target NAME')
    .option('--image <ID>', 'an image of the store (Glance targets), or REPOSITORY:TAG (registry targets)')
    .option('--target <NAME>', 'only this target')
    .addHelpText(
      'after',
      '\nExamples:\n  ecluse target push                       # retry every failed push\n' +
        '  ecluse target push --image 0b8e7f3c-5d1a-4e2b-9c7d-2f6a1e4b8c90 --target site-glance\n' +
        '  ecluse target push --image acme/app:1.4 --target registry\n',
    )
    .action(async (o: { image?: string; target?: string }) => {
      await report(ctx(), async () => {
        const s = openSite(resolveHome(home()));
        try {
          // --image names a VM image (Glance targets) or REPOSITORY:TAG (registry targets): push it where it belongs.
          const container = o.image?.includes(':') === true;
          if (o.image && container && !imageOfKey(s.db, o.image)) {
            throw new EcluseError(
              'E_NOT_FOUND',
              `no container image ${o.image} in the registry store: name it REPOSITORY:TAG as "ecluse status --json" lists it`,
            );
          }
          const glanceImage = o.image !== undefined && !container;
          const targets = listTargets(s.db).filter((t) => (!o.target || t.name === o.target) && !container);
          const registries = listRegistryTargets(s.db).filter(
            (t) => (!o.target || t.name === o.target) && !glanceImage,
          );
          if (targets.length + registries.length === 0)
            throw new EcluseError('E_NOT_FOUND', o.target ? `no target named ${o.target}` : 'no targets');
          const results = await pushToRegistries(s, registries, o.image);
          for (const t of targets) {
            const ids = o.image
              ? [o.image]
              : pushRecords(s.db, t.name)
                  .filter((p) => p.status !== 'active')
                  .map((p) => p.image_id);
            for (const id of ids) results.push(await pushImage(s.db, s.home.images, t, id));
          }
          const failed = results.filter((r) => !r.ok);
          if (failed.length > 0) {
            throw new EcluseError('E_TARGET', failed.map((f) => f.message).join('; '));
          }
          return {
            json: { pushes: results },
            human: results.length ? results.map((r) => r.message) : 'nothing to push',
          };
        } finally {
          s.db.close();
        }
      });
    });
}
