/**
 * `relay fetch` for `registry` feeds: the tags of the repository (`skopeo list-tags` for a registry, the layout's
 * `index.json` for an OCI layout folder), those matching `match` whose tag gives a version, each new version taken in
 * as `relay add-image` does, its cosign signature required and checked against the keys pinned with the feed.
 */
import fs from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import { z } from 'zod';
import { parseBoundedJson } from '../../sneakernet/bounded-json.js';
import { asEcluseError, EcluseError } from '../../sneakernet/errors.js';
import type { RelayHome } from '../catalog.js';
import { addImage } from '../images/add-image.js';
import { parseImageReference } from '../images/reference.js';
import { runSkopeo, sourceOptions } from '../images/skopeo.js';
import { versionOf, type Feed } from './config.js';
import type { FetchOptions, FetchResult } from './fetch-result.js';
import type { RegistryFeedConfig } from './registry-config.js';

const MAX_TAGS = 10_000;
const tagList = z.object({ Tags: z.array(z.string().max(128)).max(MAX_TAGS).nullable() });
const layoutIndex = z.object({
  manifests: z.array(z.object({ annotations: z.record(z.string(), z.string()).optional() })).max(MAX_TAGS),
});

/** The tags of the feed's repository. */
async function listTags(c: RegistryFeedConfig): Promise<string[]> {
  if (c.url.startsWith('oci:')) {
    const dir = c.url.slice('oci:'.length);
    const file = path.join(dir, 'index.json');
    const bytes = await fs.promises.readFile(file).catch((e: unknown) => {
      throw new EcluseError('E_FEED', `feed ${c.name}: ${file} cannot be read: ${(e as Error).message}`);
    });
    const p = layoutIndex.safeParse(parseBoundedJson(bytes, file, 16 * 1024 * 1024, { code: 'E_FEED' }));
    if (!p.success) throw new EcluseError('E_FEED', `feed ${c.name}: ${file} is not an OCI layout index`);
    return p.data.manifests.flatMap((m) => {
      const name = m.annotations?.['org.opencontainers.image.ref.name'];
      return name ? [name] : [];
    });
  }
  const ref = parseImageReference(`${c.url}:latest`);
  // list-tags spells the source options without the src- prefix.
  const options = sourceOptions(ref, { authfile: c.authfile, insecureRegistry: c.insecureRegistry }).map((a) =>
    a.replace(/^--src-/, '--'),
  );
  const out = await runSkopeo(['list-tags', ...options, c.url], `feed ${c.name}: listing the tags of ${c.url}`, {
    authfile: c.authfile,
    insecureRegistry: c.insecureRegistry,
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(out);
  } catch {
    throw new EcluseError('E_FEED', `feed ${c.name}: skopeo list-tags answered something that is not JSON`);
  }
  const p = tagList.safeParse(parsed);
  if (!p.success) throw new EcluseError('E_FEED', `feed ${c.name}: the tag list of ${c.url} is malformed or too long`);
  return p.data.Tags ?? [];
}

export async function fetchRegistryFeed(
  home: RelayHome,
  feed: Feed<RegistryFeedConfig>,
  o: FetchOptions,
  result: FetchResult,
  present: (name: string, version: string) => boolean,
): Promise<void> {
  const c = feed.config;
  let tags: string[];
  try {
    tags = await listTags(c);
  } catch (e) {
    const err = asEcluseError(e);
    result.refused.push({ feed: c.name, file: null, code: err.code, message: err.message });
    return;
  }
  const isMatch = picomatch(c.match, { dot: false });
  // Cosign's signature tags (sha256-<hex>.sig, .att, .sbom) are never releases.
  const releases = tags.filter((t) => !/^sha256-[0-9a-f]{64}\./.test(t) && isMatch(t));
  for (const tag of releases) {
    const version = versionOf(c, tag);
    if (!version) continue;
    if (present(c.product, version)) {
      result.present.push({ feed: c.name, name: c.product, version });
      continue;
    }
    const reference = `${c.url}:${tag}`;
    o.onFile?.(c.name, reference);
    try {
      const r = await addImage(home, {
        reference,
        name: c.product,
        version,
        platforms: c.platforms,
        repository: c.repository,
        tag,
        properties: c.properties,
        vendor: c.vendor,
        authfile: c.authfile,
        insecureRegistry: c.insecureRegistry,
        vendorKeys: feed.trust.sigstore.map((k) => k.pem),
        feed: c.name,
      });
      result.fetched.push({
        feed: c.name,
        name: c.product,
        version,
        file: reference,
        size: r.artifact.size,
        sha256: r.artifact.sha256,
        resumedFrom: 0,
        evidence: 'cosign',
      });
    } catch (e) {
      const err = asEcluseError(e);
      result.refused.push({ feed: c.name, file: reference, code: err.code, message: err.message });
    }
  }
}
