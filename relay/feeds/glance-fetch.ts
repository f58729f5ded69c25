/**
 * `ecluse relay fetch` for a glance feed: list the outside Glance, select, and bring each new version in.
 *
 * Per selected image, before any byte is read: the signature properties (all four or none), the certificate they
 * name pinned for the feed (E_VENDOR_UNTRUSTED) and valid now, the key type fitting it (E_VENDOR_SIGNATURE); an
 * unsigned image is refused unless the feed says `requireSignature: false`. Then `GET /v2/images/{id}/file` is
 * streamed into a partial file (resumed with Range), and every byte feeds sha256/sha512 (the catalog's), the image's
 * `os_hash_algo` digest, md5 (`checksum`) and the signature verifier; a size, digest or signature that does not match
 * what Glance published refuses the image (E_VENDOR_DIGEST, E_VENDOR_SIGNATURE) and its bytes are dropped. The image
 * record as received and `evidence.json` (format 4.5, kind `glance-image`) are kept beside the blob.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import picomatch from 'picomatch';
import { asEcluseError, EcluseError } from '../../sneakernet/errors.js';
import { LIMITS } from '../../sneakernet/limits.js';
import { CONTAINER_FORMATS, DISK_FORMATS, propertyKey } from '../../sneakernet/statement.js';
import { vendorEvidenceSchema } from '../../sneakernet/evidence.js';
import type { VendorEvidence } from '../../sneakernet/evidence.js';
import {
  checkValidity,
  keyFits,
  readGlanceSignature,
  SIGNATURE_PROPERTIES,
  streamingVerifier,
  type GlanceSignature,
  type StreamingVerifier,
} from '../../keys/glance-signature.js';
import { validate } from '../add.js';
import type { RelayHome } from '../catalog.js';
import { asVersion, versionOf } from './common.js';
import type { Feed } from './config.js';
import { download, type Tap } from './download.js';
import { keepRelease, partialPath, type FetchedRelease } from './evidence-files.js';
import type { FetchOptions, FetchResult } from './fetch-result.js';
import { GlanceSource, listQuery, selects, type GlanceImage } from './glance-api.js';
import { KeystoneSession } from './keystone.js';
import { readToken, requiresSignature, type GlanceFeedConfig, type PinnedGlanceCertificate } from './glance-config.js';

type GlanceFeed = Feed<GlanceFeedConfig>;

/** A remote image name as shown in messages and logs: control characters replaced, so none can forge a line. */
const shown = (name: string) => name.replace(/[\p{Cc}\u2028\u2029]/gu, '\uFFFD');
const labelOf = (image: GlanceImage) => `${shown(image.name ?? '')} (${image.id})`;

/** hashlib names (os_hash_algo) → Node's. */
const OS_HASHES: Record<string, string> = {
  sha224: 'sha224',
  sha256: 'sha256',
  sha384: 'sha384',
  sha512: 'sha512',
  sha3_224: 'sha3-224',
  sha3_256: 'sha3-256',
  sha3_384: 'sha3-384',
  sha3_512: 'sha3-512',
  blake2b: 'blake2b512',
  blake2s: 'blake2s256',
  sha1: 'sha1',
  md5: 'md5',
};

const refuse = (code: 'E_VENDOR_DIGEST' | 'E_VENDOR_SIGNATURE' | 'E_VENDOR_UNTRUSTED', message: string) =>
  new EcluseError(code, message, {
    check:
      code === 'E_VENDOR_DIGEST' ? 'vendor-digest' : code === 'E_VENDOR_SIGNATURE' ? 'vendor-signature' : 'vendor-key',
  });

/** Every byte of the image, into the digests Glance published and the signature verifier. */
class GlanceTap implements Tap {
  readonly osHash: crypto.Hash | null;
  readonly md5: crypto.Hash | null;
  readonly verifier: StreamingVerifier | null;

  constructor(osAlgo: string | null, md5: boolean, sig: GlanceSignature | null) {
    this.osHash = osAlgo ? crypto.createHash(osAlgo) : null;
    this.md5 = md5 ? crypto.createHash('md5') : null;
    this.verifier = sig ? streamingVerifier(sig) : null;
  }

  update(chunk: Buffer): void {
    this.osHash?.update(chunk);
    this.md5?.update(chunk);
    this.verifier?.update(chunk);
  }
}

/** What the vendor's signature on the image is checked with, decided before the download. */
interface Trust {
  signature: GlanceSignature;
  cert: PinnedGlanceCertificate;
  key: crypto.KeyObject;
}

function decideTrust(feed: GlanceFeed, image: GlanceImage, what: string): Trust | null {
  const c = feed.config;
  const sig = readGlanceSignature(image.properties, what);
  if (!sig) {
    if (requiresSignature(c)) refuseUnsigned(what);
    return null;
  }
  const cert = (feed.trust.glance ?? []).find((p) => p.uuid === sig.certificateUuid);
  if (!cert) {
    // Without requireSignature, a signature nobody pinned proves nothing: the image comes as provenance only.
    if (!requiresSignature(c)) return null;
    throw refuse(
      'E_VENDOR_UNTRUSTED',
      `${what} is signed with certificate ${sig.certificateUuid}, which is not pinned for this feed`,
    );
  }
  checkValidity(cert, `${what}: certificate ${cert.uuid}`);
  const key = crypto.createPublicKey(cert.pem);
  if (!keyFits(key, sig.keyType)) {
    throw refuse(
      'E_VENDOR_SIGNATURE',
      `${what}: img_signature_key_type ${sig.keyType} does not fit the key of certificate ${cert.uuid}`,
    );
  }
  return { signature: sig, cert, key };
}

function refuseUnsigned(what: string): never {
  throw refuse('E_VENDOR_SIGNATURE', `${what} carries no image signature (img_signature*), and the feed requires one`);
}

/** The image's properties carried to the site: those `copyProperties` names, then the feed's own. */
function carriedProperties(c: GlanceFeedConfig, image: GlanceImage): Record<string, string> {
  const take = picomatch(c.copyProperties, { dot: true });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(image.properties).sort(([a], [b]) => a.localeCompare(b))) {
    if (Object.keys(out).length >= LIMITS.properties - Object.keys(c.properties).length) break;
    if ((SIGNATURE_PROPERTIES as readonly string[]).includes(k) || k.startsWith('ecluse_') || !take(k)) continue;
    if (!propertyKey.safeParse(k).success) continue;
    out[k] = v;
  }
  return { ...out, ...c.properties };
}

function formats(c: GlanceFeedConfig, image: GlanceImage, what: string) {
  const diskFormat = c.diskFormat ?? image.diskFormat ?? '';
  const containerFormat = c.containerFormat ?? image.containerFormat ?? '';
  if (
    !(DISK_FORMATS as readonly string[]).includes(diskFormat) ||
    !(CONTAINER_FORMATS as readonly string[]).includes(containerFormat)
  ) {
    throw new EcluseError(
      'E_FEED',
      `${what} has disk format ${diskFormat || 'none'} and container format ${containerFormat || 'none'}: set diskFormat/containerFormat on the feed`,
    );
  }
  return { diskFormat, containerFormat };
}

async function fetchImage(
  home: RelayHome,
  feed: GlanceFeed,
  source: GlanceSource,
  image: GlanceImage,
  version: string,
  o: FetchOptions,
): Promise<FetchedRelease> {
  const c = feed.config;
  const label = labelOf(image);
  const what = `feed ${c.name}: image ${label}`;
  if (image.size === null) throw refuse('E_VENDOR_DIGEST', `${what}: Glance publishes no size for it`);
  const osAlgo = image.osHashAlgo && image.osHashValue ? (OS_HASHES[image.osHashAlgo] ?? null) : null;
  if (image.osHashAlgo && image.osHashValue && !osAlgo) {
    throw refuse('E_VENDOR_DIGEST', `${what}: os_hash_algo ${image.osHashAlgo} is not one écluse can check`);
  }
  if (!osAlgo && !image.checksum) throw refuse('E_VENDOR_DIGEST', `${what}: Glance publishes no digest for it`);
  const { diskFormat, containerFormat } = formats(c, image, what);
  const properties = carriedProperties(c, image);
  validate({ name: c.product, version, diskFormat, containerFormat, properties });
  const trust = decideTrust(feed, image, what);
  const url = source.fileUrl(image.id);
  const partial = partialPath(home, c.name, url);
  o.onFile?.(c.name, `${shown(image.name ?? image.id)} ${version}`);
  let got;
  try {
    got = await download(url, partial, o.onProgress, {
      headers: source.headers(),
      redirect: 'error',
      expectedSize: image.size,
      stallTimeoutMs: o.stallTimeoutMs,
      what,
      // sha512 and md5 are computed anyway (the catalog's); another os_hash_algo gets its own digest.
      taps: () => [new GlanceTap(osAlgo === 'sha512' ? null : osAlgo, false, trust?.signature ?? null)],
    });
  } catch (e) {
    if (asEcluseError(e).code.startsWith('E_VENDOR_')) await fs.promises.rm(partial, { force: true });
    throw e;
  }
  try {
    const tap = got.taps[0] as GlanceTap;
    const osValue = osAlgo === 'sha512' ? got.sha512 : (tap.osHash?.digest('hex') ?? null);
    if (osAlgo && osValue !== image.osHashValue) {
      throw refuse(
        'E_VENDOR_DIGEST',
        `${what}: ${image.osHashAlgo} is ${osValue?.slice(0, 16)}…, Glance published ${image.osHashValue?.slice(0, 16)}…`,
      );
    }
    const md5 = got.md5;
    if (image.checksum && md5 !== image.checksum) {
      throw refuse('E_VENDOR_DIGEST', `${what}: md5 is ${md5}, Glance published checksum ${image.checksum}`);
    }
    if (trust && !tap.verifier?.verify(trust.key)) {
      throw refuse(
        'E_VENDOR_SIGNATURE',
        `${what}: the image signature does not verify with certificate ${trust.cert.uuid}`,
      );
    }
    const evidence: VendorEvidence = vendorEvidenceSchema.parse({
      kind: 'glance-image',
      endpoint: c.endpoint ?? source.root,
      imageId: image.id,
      imageName: image.name,
      osHashAlgo: image.osHashValue ? image.osHashAlgo : null,
      osHashValue: image.osHashAlgo ? image.osHashValue : null,
      checksum: image.checksum,
      signature: trust
        ? {
            certificateUuid: trust.cert.uuid,
            keyId: trust.cert.keyId,
            hashMethod: trust.signature.hashMethod,
            keyType: trust.signature.keyType,
            value: trust.signature.value,
          }
        : null,
    });
    const record = Buffer.from(`${JSON.stringify(image.raw, null, 2)}\n`);
    return await keepRelease(home, got, {
      feed: c.name,
      file: label,
      name: c.product,
      version,
      diskFormat,
      containerFormat,
      properties,
      vendor: c.vendor,
      source: source.imageUrl(image.id),
      evidence,
      files: [{ name: 'glance-image.json', bytes: record }],
    });
  } catch (e) {
    // Bytes that failed a vendor check are not kept (a resumed download must not build on them).
    await fs.promises.rm(partial, { force: true });
    throw e;
  }
}

/** The version of a selected image: its `versionProperty`, else `versionPattern` on its name; null: not a release. */
function versionOfImage(c: GlanceFeedConfig, image: GlanceImage): string | null {
  if (c.versionProperty !== undefined) return asVersion(image.properties[c.versionProperty]);
  return versionOf(c, image.name ?? '');
}

/** Fetches one glance feed into `result` (refusals are recorded, never thrown). */
export async function fetchGlanceFeed(
  home: RelayHome,
  feed: GlanceFeed,
  o: FetchOptions,
  result: FetchResult,
  present: (name: string, version: string) => boolean,
): Promise<void> {
  const c = feed.config;
  const byVersion = new Map<string, GlanceImage[]>();
  let source: GlanceSource;
  let keystone: KeystoneSession | null = null;
  try {
    if (c.keystone) {
      keystone = await KeystoneSession.open(c);
      const endpoint = c.endpoint ?? keystone.imageEndpoint;
      if (endpoint === null) {
        throw new EcluseError(
          'E_FEED',
          `feed ${c.name}: the Keystone catalog names no ${c.keystone.interface} image endpoint${c.keystone.region ? ` in region ${c.keystone.region}` : ''}; give --endpoint`,
          { check: 'feed' },
        );
      }
      source = new GlanceSource({ ...c, endpoint }, keystone.current);
    } else source = new GlanceSource({ ...c, endpoint: c.endpoint as string }, readToken(c));
    for await (const image of source.list(listQuery(c))) {
      if (!selects(c, image)) continue;
      const version = versionOfImage(c, image);
      if (version === null) continue;
      const same = byVersion.get(version) ?? [];
      if (!same.some((x) => x.id === image.id)) byVersion.set(version, [...same, image]);
    }
  } catch (e) {
    const err = asEcluseError(e);
    result.refused.push({ feed: c.name, file: null, code: err.code, message: err.message });
    return;
  }
  for (const [version, images] of [...byVersion].sort(([a], [b]) => a.localeCompare(b))) {
    if (present(c.product, version)) {
      result.present.push({ feed: c.name, name: c.product, version });
      continue;
    }
    if (images.length > 1) {
      result.refused.push({
        feed: c.name,
        file: images.map((i) => i.id).join(', '),
        code: 'E_FEED',
        message: `feed ${c.name}: ${images.length} images have version ${version} (${images.map(labelOf).join(', ')}): narrow the selection`,
      });
      continue;
    }
    const image = images[0] as GlanceImage;
    try {
      if (keystone) source.useToken(await keystone.token());
      result.fetched.push(await fetchImage(home, feed, source, image, version, o));
    } catch (e) {
      const err = asEcluseError(e);
      result.refused.push({
        feed: c.name,
        file: labelOf(image),
        code: err.code,
        message: err.message,
      });
    }
  }
}
