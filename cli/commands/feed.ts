/** `ecluse relay feed add|list|remove`, `ecluse relay feeds apply FILE`, `ecluse relay fetch`: vendor feeds. */
import type { Command } from 'commander';
import path from 'node:path';
import { EcluseError } from '../../sneakernet/errors.js';
import type { RelayHome } from '../../relay/catalog.js';
import type { Feed } from '../../relay/feeds/config.js';
import { parseDuration } from '../duration.js';
import { resolveHome } from '../home.js';
import { formatBytes, report, type CommandContext } from '../output.js';

// What the commands run is loaded when one runs (cli/main.ts): `relay add` and `export` do not pay for the feeds.
const feedConfig = () => import('../../relay/feeds/config.js');

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `K=V` options into a record (`what` names the option in the usage error). */
function pairs(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new EcluseError('E_USAGE', `${what} wants KEY=VALUE, got "${kv}"`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function feedJson(f: Feed) {
  return {
    ...f.config,
    pinned: {
      openpgp: f.trust.openpgp.map((k) => k.fingerprint),
      sigstore: f.trust.sigstore.map((k) => k.keyId),
      glance: (f.trust.glance ?? []).map((k) => ({
        uuid: k.uuid,
        keyId: k.keyId,
        subject: k.subject,
        notAfter: k.notAfter,
      })),
    },
    addedAt: f.addedAt,
  };
}

/** What a feed pins, one short word each, for the human lines. */
function pinnedWords(f: Feed): string[] {
  return [
    ...f.trust.openpgp.map((k) => k.fingerprint),
    ...f.trust.sigstore.map((k) => k.keyId.slice(0, 16)),
    ...(f.trust.glance ?? []).map((k) => `${k.uuid} (${k.subject})`),
  ];
}

function pinnedLine(f: Feed): string {
  const words = pinnedWords(f);
  if (words.length > 0) return `pinned ${words.join(', ')}`;
  return f.config.kind === 'glance' ? 'no certificate pinned: unsigned images, provenance only' : 'nothing pinned';
}

async function withHome<T>(home: () => string | undefined, body: (h: RelayHome) => Promise<T>): Promise<T> {
  const { openRelayHome } = await import('../../relay/catalog.js');
  const h = openRelayHome(resolveHome(home()));
  return body(h).finally(() => h.db.close());
}

export function registerFeeds(relay: Command, ctx: () => CommandContext, home: () => string | undefined): void {
  const feed = relay
    .command('feed')
    .description('vendor feeds: where new releases come from, and the vendor keys pinned');
  feed
    .command('add')
    .description('declare a vendor feed (its trust material is pinned now)')
    .argument('<NAME>', 'a name for the feed')
    .requiredOption('--vendor <VENDOR>', 'who publishes it (matched by the site policy)')
    .requiredOption('--product <NAME>', 'the artifact (image) name at the site')
    .requiredOption(
      '--kind <KIND>',
      'checksums (OpenPGP-signed SHA256SUMS/SHA512SUMS), sigstore (blob + bundle), glance (an outside Glance) or registry (container images, cosign-signed)',
    )
    .option(
      '--url <URL_OR_DIR>',
      'checksums, sigstore: the mirror, an http(s):// folder URL or a local folder; registry: docker://HOST[:PORT]/REPO or oci:DIR',
    )
    .option('--checksums <FILE>', 'checksums: the checksum file name (SHA256SUMS, SHA512SUMS, CHECKSUM)')
    .option('--signature <FILE>', 'checksums: the detached signature (SHA256SUMS.gpg); omit for a clear-signed file')
    .option('--openpgp-key <FILE>', 'checksums: the vendor OpenPGP public key to pin (repeatable)', collect, [])
    .option('--public-key <FILE>', 'sigstore, registry: the vendor public key (PEM) to pin (repeatable)', collect, [])
    .option('--platform <OS/ARCH[/VARIANT]>', 'registry: carry this platform (repeatable; default: all)', collect, [])
    .option('--repository <PATH>', 'registry: the repository served inside (default: the registry path)')
    .option('--authfile <FILE>', 'registry: a containers auth file (read at each fetch, never copied)')
    .option('--insecure-registry', 'registry: plain HTTP to a registry that is not on loopback')
    .option('--bundle-suffix <SUFFIX>', 'sigstore: the bundle beside each artifact', '.sigstore.json')
    .option('--match <GLOB>', 'which published files (registry: which tags) are this product', '*')
    .option('--version-pattern <REGEX>', 'regular expression on the file name; its first group is the version')
    .option('--endpoint <URL>', 'glance: the outside Glance base URL (https://glance.staging:9292)')
    .option('--token-file <FILE>', 'glance: a file holding the token sent as X-Auth-Token (read at each fetch)')
    .option('--token-env <VAR>', 'glance: an environment variable holding that token (read at each fetch)')
    .option('--keystone <URL>', 'glance: authenticate with this Keystone v3 (OS_AUTH_URL) instead of a token')
    .option('--app-credential-id <ID>', 'glance, --keystone: the application credential id')
    .option('--app-credential-secret-file <FILE>', 'glance, --keystone: a file holding its secret (read at each fetch)')
    .option('--app-credential-secret-env <VAR>', 'glance, --keystone: an environment variable holding its secret')
    .option('--region <REGION>', 'glance, --keystone: the catalog region of the image endpoint (without --endpoint)')
    .option('--interface <I>', 'glance, --keystone: public, internal or admin catalog endpoint', 'public')
    .option('--match-name <PATTERN>', 'glance: the image name, exact or a glob', '*')
    .option('--match-tag <TAG>', 'glance: a tag the image must carry (repeatable: all of them)', collect, [])
    .option('--match-property <K=V>', 'glance: a property the image must have (repeatable: all of them)', collect, [])
    .option('--visibility <V>', 'glance: public, private, shared, community or all (default: what Glance lists)')
    .option('--version-property <KEY>', 'glance: the image property holding the version (default: from the name)')
    .option('--certificate <UUID=FILE>', 'glance: a vendor image-signing certificate to pin (repeatable)', collect, [])
    .option('--allow-unsigned', 'glance: take unsigned images too (provenance only: policies pinning keys refuse them)')
    .option(
      '--copy-property <GLOB>',
      'glance: image properties carried to the site (repeatable; default architecture, os_distro, os_version, os_type, hw_*)',
      collect,
      [],
    )
    .option('--disk-format <FORMAT>', "raw, qcow2, ... (default: detected from each file; glance: the image's)")
    .option('--container-format <FORMAT>', "bare, ovf, ... (default: bare; glance: the image's)")
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  ecluse relay feed add debian-13 --vendor debian --product debian-13 --kind checksums \\\n' +
        '    --url https://cloud.debian.org/images/cloud/trixie/latest/ --checksums SHA512SUMS --signature SHA512SUMS.sign \\\n' +
        "    --openpgp-key debian-cloud.asc --match 'debian-13-genericcloud-amd64*.qcow2'\n" +
        '  ecluse relay feed add appliance --vendor acme --product acme-fw --kind sigstore --url https://acme.example/fw/ \\\n' +
        '    --public-key acme-release.pub\n' +
        '  ecluse relay feed add acme-app --vendor acme --product app --kind registry \\\n' +
        "    --url docker://registry.vendor.example/acme/app --match '1.*' --public-key acme-cosign.pub --platform linux/amd64\n" +
        '  ecluse relay feed add staging-ubuntu --vendor canonical --product ubuntu-24.04 --kind glance \\\n' +
        "    --endpoint https://glance.staging.example:9292 --token-file staging.token --match-name 'ubuntu-24.04-*' \\\n" +
        '    --match-tag release --match-property os_distro=ubuntu --version-property version \\\n' +
        '    --certificate 6b8c1f8e-2f0a-4c43-9d61-0d3c5d6f7a10=vendor-signing.pem\n' +
        '  (or, with a Keystone application credential and the image endpoint from its catalog:\n' +
        '    --keystone https://keystone.staging.example:5000/v3 --app-credential-id ID --app-credential-secret-file FILE)\n',
    )
    .action(
      async (
        name: string,
        o: {
          vendor: string;
          product: string;
          kind: string;
          url?: string;
          endpoint?: string;
          tokenFile?: string;
          tokenEnv?: string;
          keystone?: string;
          appCredentialId?: string;
          appCredentialSecretFile?: string;
          appCredentialSecretEnv?: string;
          region?: string;
          interface: string;
          matchName: string;
          matchTag: string[];
          matchProperty: string[];
          visibility?: string;
          versionProperty?: string;
          certificate: string[];
          allowUnsigned?: boolean;
          copyProperty: string[];
          checksums?: string;
          signature?: string;
          openpgpKey: string[];
          publicKey: string[];
          platform: string[];
          repository?: string;
          authfile?: string;
          insecureRegistry?: boolean;
          bundleSuffix: string;
          match: string;
          versionPattern?: string;
          diskFormat?: string;
          containerFormat?: string;
        },
      ) => {
        await report(ctx(), () =>
          withHome(home, async (h) => {
            const { declareFeed, feedSource, parseFeed, saveFeed } = await feedConfig();
            const { parsePlatform } = await import('../../sneakernet/oci/platform.js');
            const common = {
              name,
              vendor: o.vendor,
              product: o.product,
              kind: o.kind,
              versionPattern: o.versionPattern,
              diskFormat: o.diskFormat,
              containerFormat: o.containerFormat,
            };
            const registry = {
              name,
              vendor: o.vendor,
              product: o.product,
              kind: o.kind,
              versionPattern: o.versionPattern,
              url: o.url,
              match: o.match,
              publicKeys: o.publicKey,
              platforms: o.platform.map(parsePlatform),
              repository: o.repository,
              authfile: o.authfile === undefined ? undefined : path.resolve(o.authfile),
              insecureRegistry: o.insecureRegistry,
            };
            const raw =
              o.kind === 'registry'
                ? registry
                : o.kind === 'glance'
                  ? {
                      ...common,
                      endpoint: o.endpoint,
                      tokenFile: o.tokenFile,
                      tokenEnv: o.tokenEnv,
                      keystone:
                        o.keystone === undefined
                          ? undefined
                          : {
                              authUrl: o.keystone,
                              applicationCredentialId: o.appCredentialId,
                              applicationCredentialSecretFile: o.appCredentialSecretFile,
                              applicationCredentialSecretEnv: o.appCredentialSecretEnv,
                              region: o.region,
                              interface: o.interface,
                            },
                      matchName: o.matchName,
                      matchTags: o.matchTag,
                      matchProperties: pairs(o.matchProperty, '--match-property'),
                      visibility: o.visibility,
                      versionProperty: o.versionProperty,
                      certificates: pairs(o.certificate, '--certificate'),
                      requireSignature: o.allowUnsigned ? false : undefined,
                      copyProperties: o.copyProperty.length ? o.copyProperty : undefined,
                    }
                  : {
                      ...common,
                      url: o.url,
                      checksums: o.checksums,
                      signature: o.signature,
                      openpgpKeys: o.openpgpKey.length ? o.openpgpKey : undefined,
                      publicKeys: o.publicKey.length ? o.publicKey : undefined,
                      bundleSuffix: o.bundleSuffix,
                      match: o.match,
                    };
            const f = declareFeed(parseFeed(raw, 'feed'), process.cwd());
            saveFeed(h.db, f, false);
            const c = f.config;
            return Promise.resolve({
              json: { feed: feedJson(f) },
              human: `feed ${name} added: ${c.vendor} ${c.product} (${c.kind}) from ${feedSource(c)}, ${pinnedLine(f)}`,
            });
          }),
        );
      },
    );
  feed
    .command('list')
    .description('list the declared feeds and their pinned keys')
    .addHelpText('after', '\nExample:\n  ecluse --home /var/lib/ecluse-relay relay feed list --json\n')
    .action(async () => {
      await report(ctx(), () =>
        withHome(home, async (h) => {
          const { feedSource, listFeeds } = await feedConfig();
          const feeds = listFeeds(h.db);
          return {
            json: { feeds: feeds.map(feedJson) },
            human: feeds.length
              ? feeds.map(
                  (f) =>
                    `${f.config.name}: ${f.config.vendor} ${f.config.product} (${f.config.kind}) from ${feedSource(f.config)}; ${pinnedLine(f)}`,
                )
              : 'no feed is declared',
          };
        }),
      );
    });
  feed
    .command('remove')
    .description('forget a feed (what it brought stays in the catalog)')
    .argument('<NAME>')
    .addHelpText('after', '\nExample:\n  ecluse relay feed remove debian-13\n')
    .action(async (name: string) => {
      await report(ctx(), () =>
        withHome(home, async (h) => {
          (await feedConfig()).removeFeed(h.db, name);
          return { json: { removed: name }, human: `feed ${name} removed` };
        }),
      );
    });

  const feeds = relay.command('feeds').description('all vendor feeds at once, from a file');
  feeds
    .command('apply')
    .description('declare the feeds of a YAML/JSON file ({feeds: [...]}); feeds it does not name are removed')
    .argument('<FILE>')
    .addHelpText(
      'after',
      `
The file (YAML or JSON) lists every feed; the fields are the options of "ecluse relay feed add":
  feeds:
    - name: debian-13
      vendor: debian
      product: debian-13
      kind: checksums                  # checksums | sigstore | glance
      url: https://cloud.debian.org/images/cloud/trixie/latest/
      checksums: SHA512SUMS
      signature: SHA512SUMS.sign       # absent when the checksum file is clear-signed
      openpgpKeys: [debian-cloud.asc]  # files, or inline armored keys
      match: "debian-13-genericcloud-amd64*.qcow2"
    - name: appliance
      vendor: acme
      product: acme-fw
      kind: sigstore
      url: https://acme.example/fw/
      publicKeys: [acme-release.pub]

Example:
  ecluse relay feeds apply feeds.yaml --json
`,
    )
    .action(async (file: string) => {
      await report(ctx(), () =>
        withHome(home, async (h) => {
          const { applyFeeds, readFeedsFile } = await feedConfig();
          const r = applyFeeds(h.db, readFeedsFile(file));
          return {
            json: r,
            human: `feeds applied from ${file}: ${r.added.length} added, ${r.updated.length} updated, ${r.removed.length} removed`,
          };
        }),
      );
    });

  relay
    .command('fetch')
    .description('bring the new releases of the feeds into the catalog, checking each vendor signature')
    .option('--feed <NAME>', 'only this feed')
    .option('--stall-timeout <DURATION>', 'stop a download when no byte arrives for this long (resumable)', '60s')
    .addHelpText(
      'after',
      '\nA release whose vendor check fails is refused (E_VENDOR_SIGNATURE, E_VENDOR_DIGEST, E_VENDOR_UNTRUSTED) and\n' +
        'not kept; the command then exits 1. Interrupted downloads resume where they stopped (HTTP Range).\n' +
        'A glance feed brings each selected active image whose version is not in the catalog yet, checking its size,\n' +
        'os_hash_value, checksum and image signature (img_signature*) against the pinned certificates while it streams.\n' +
        '\nExample:\n  ecluse --home /var/lib/ecluse-relay relay fetch --feed debian-13 --stall-timeout 2m\n',
    )
    .action(async (o: { feed?: string; stallTimeout: string }) => {
      await report(ctx(), () =>
        withHome(home, async (h) => {
          const { fetchFeeds } = await import('../../relay/feeds/fetch.js');
          const { progressBar } = await import('../progress.js');
          const stallTimeoutMs = parseDuration(o.stallTimeout);
          let bar = progressBar('fetching', !ctx().json);
          const r = await fetchFeeds(h, {
            feed: o.feed,
            stallTimeoutMs,
            onFile: (feedName, file) => {
              bar.stop();
              bar = progressBar(`${feedName} ${file}`, !ctx().json);
            },
            onProgress: (d, t) => bar.update(d, t),
          });
          bar.stop();
          const first = r.refused[0];
          if (first) {
            throw new EcluseError(
              first.code as never,
              r.refused.map((x) => `${x.feed}${x.file ? ` ${x.file}` : ''}: ${x.message}`).join('; ') +
                (r.fetched.length ? ` (${r.fetched.length} other release(s) fetched)` : ''),
              { check: 'vendor' },
            );
          }
          return {
            json: r,
            human: [
              ...r.fetched.map(
                (f) =>
                  `fetched ${f.name} ${f.version} from ${f.feed} (${formatBytes(f.size)}, sha256 ${f.sha256.slice(0, 16)}…)`,
              ),
              `${r.fetched.length} new release(s), ${r.present.length} already in the catalog`,
            ],
          };
        }),
      );
    });
}
