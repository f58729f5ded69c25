/**
 * Image references as skopeo users write them (`relay add-image REF`): `docker://HOST[:PORT]/REPO:TAG` or
 * `…/REPO@sha256:…`, `oci:DIR[:TAG]`, `oci-archive:FILE[:TAG]`. What écluse derives from one: the repository path the
 * image is served under inside (without the registry host), its tag, whether plain HTTP may be used (loopback only,
 * unless the operator says the registry is insecure), and where cosign keeps its signature.
 */
import { EcluseError } from '../../sneakernet/errors.js';
import { REPOSITORY_PATTERN, TAG_PATTERN } from '../../sneakernet/oci/statement-image.js';

export type ImageReference =
  | {
      transport: 'docker';
      /** `HOST[:PORT]` as written. */
      registry: string;
      repository: string;
      tag: string | null;
      digest: string | null;
    }
  | { transport: 'oci' | 'oci-archive'; path: string; tag: string | null };

function usage(ref: string, why: string): EcluseError {
  return new EcluseError(
    'E_USAGE',
    `${ref} is not an image reference écluse reads (${why}): use docker://HOST[:PORT]/REPO:TAG, docker://HOST/REPO@sha256:HEX, oci:DIR[:TAG] or oci-archive:FILE[:TAG]`,
    { check: 'image-reference' },
  );
}

export function parseImageReference(ref: string): ImageReference {
  if (ref.startsWith('docker://')) {
    const rest = ref.slice('docker://'.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) throw usage(ref, 'no registry host');
    const registry = rest.slice(0, slash);
    if (!/^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$/.test(registry)) {
      throw usage(ref, `the registry ${registry} is not HOST[:PORT]`);
    }
    let path = rest.slice(slash + 1);
    let digest: string | null = null;
    let tag: string | null = null;
    const at = path.indexOf('@');
    if (at >= 0) {
      digest = path.slice(at + 1);
      path = path.slice(0, at);
      if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw usage(ref, 'the digest is not sha256:<64 hex>');
    } else {
      const colon = path.lastIndexOf(':');
      if (colon > 0) {
        tag = path.slice(colon + 1);
        path = path.slice(0, colon);
        if (!TAG_PATTERN.test(tag)) throw usage(ref, `the tag ${tag} is not a valid tag`);
      }
    }
    if (!tag && !digest) throw usage(ref, 'no :TAG or @sha256: digest');
    if (path.length > 255 || !REPOSITORY_PATTERN.test(path))
      throw usage(ref, `the repository ${path} is not a valid path`);
    return { transport: 'docker', registry, repository: path, tag, digest };
  }
  for (const transport of ['oci', 'oci-archive'] as const) {
    if (!ref.startsWith(`${transport}:`)) continue;
    const rest = ref.slice(transport.length + 1);
    if (rest === '') throw usage(ref, 'no path');
    // skopeo's own rule: the last colon separates the tag (a path holding a colon needs a tag).
    const colon = rest.lastIndexOf(':');
    const tag = colon > 0 ? rest.slice(colon + 1) : null;
    const path = colon > 0 ? rest.slice(0, colon) : rest;
    if (tag !== null && !TAG_PATTERN.test(tag)) throw usage(ref, `the tag ${tag} is not a valid tag`);
    return { transport, path, tag };
  }
  throw usage(ref, 'unknown transport');
}

/** Whether `registry` (`HOST[:PORT]`) is this machine: the only registries plain HTTP is used with by default. */
export function isLoopback(registry: string): boolean {
  const host = registry.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The reference skopeo reads, as the operator wrote it (the tag or digest included). */
export function skopeoSource(r: ImageReference): string {
  if (r.transport === 'docker')
    return `docker://${r.registry}/${r.repository}${r.digest ? `@${r.digest}` : `:${r.tag ?? ''}`}`;
  return `${r.transport}:${r.path}${r.tag ? `:${r.tag}` : ''}`;
}

/** Where cosign keeps the signature of `digest` beside the image: the tag `sha256-<hex>.sig` of the same repository. */
export function signatureSource(r: ImageReference, digest: string): string {
  const tag = `${digest.replace(':', '-')}.sig`;
  if (r.transport === 'docker') return `docker://${r.registry}/${r.repository}:${tag}`;
  return `${r.transport}:${r.path}:${tag}`;
}

/**
 * The repository path served inside when the operator gives none: the registry path for `docker://`, else the last
 * folder or file name of the layout, lowercased into a valid path (`oci:/srv/images/App_1` → `app_1`).
 */
export function defaultRepository(r: ImageReference): string {
  if (r.transport === 'docker') return r.repository;
  const base = (r.path.replace(/\/+$/, '').split('/').pop() ?? '').replace(/\.(tar|oci)$/, '').toLowerCase();
  const cleaned = base.replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  if (!cleaned || !REPOSITORY_PATTERN.test(cleaned)) {
    throw new EcluseError('E_USAGE', `no repository path can be derived from ${r.path}: give one with --repository`, {
      check: 'image-reference',
    });
  }
  return cleaned;
}
