/**
 * Strict, bounded parsers of the documents an OCI image is made of (docs/FORMAT.md 4.9): image manifests and indexes
 * (OCI and Docker schema 2 spellings) and image configs. Used by the export station on what it fetched from a
 * registry and by the import station on what it read from the media, so both refuse exactly the same documents.
 *
 * Bounds before anything else (size, nesting), then the schema: known members must have their specified types,
 * digests are `sha256:<hex64>` only, media types are the ones écluse knows. Unknown members are ignored, as the OCI
 * image spec requires of readers (they stay in the bytes: the digest covers them, nothing is re-serialised).
 */
import { z } from 'zod';
import { parseBoundedJson } from '../bounded-json.js';
import { EcluseError } from '../errors.js';
import { LIMITS } from '../limits.js';
import { artifactSize } from '../schema-parts.js';
import {
  CONFIG_MEDIA_TYPES,
  isIndexMediaType,
  isManifestMediaType,
  LAYER_MEDIA_TYPES,
  MEDIA_TYPE_PATTERN,
} from './media-types.js';
import { checkId } from '../check-ids.js';

/** An OCI content digest écluse accepts: SHA-256 only, lowercase hex. */
export const OCI_DIGEST_PATTERN = /^sha256:[0-9a-f]{64}$/;
export const ociDigest = z.string().regex(OCI_DIGEST_PATTERN, 'a sha256:<64 lowercase hex> digest');
export const mediaType = z.string().regex(MEDIA_TYPE_PATTERN, 'a media type');
/** An OS, architecture or variant name (`linux`, `amd64`, `v8`, BuildKit's `unknown`). */
export const platformWord = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a platform word');

const annotations = z
  .record(z.string().max(1024), z.string().max(64 * 1024))
  .refine((a) => Object.keys(a).length <= 256, 'at most 256 annotations')
  .optional();

const descriptor = z.object({
  mediaType,
  digest: ociDigest,
  size: artifactSize,
  /** Foreign (non-distributable) content is fetched from these URLs, not the registry: refused below. */
  urls: z.array(z.string().max(4096)).max(16).optional(),
  annotations,
});
export type Descriptor = z.infer<typeof descriptor>;

export const indexPlatformSchema = z.object({
  os: platformWord,
  architecture: platformWord,
  variant: platformWord.optional(),
  'os.version': z.string().max(255).optional(),
  'os.features': z.array(z.string().max(255)).max(64).optional(),
  features: z.array(z.string().max(255)).max(64).optional(),
});

const indexEntry = descriptor.extend({ platform: indexPlatformSchema.optional() });
export type IndexEntry = z.infer<typeof indexEntry>;

const indexSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: mediaType.optional(),
  manifests: z.array(indexEntry).max(LIMITS.imageIndexEntries),
  annotations,
});

const manifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: mediaType.optional(),
  config: descriptor,
  layers: z.array(descriptor).max(LIMITS.imageLayers),
  annotations,
});

/** A parsed index (OCI index or Docker manifest list). */
export interface ParsedIndex {
  kind: 'index';
  mediaType: string;
  manifests: IndexEntry[];
}
/** A parsed image manifest (OCI or Docker schema 2). */
export interface ParsedManifest {
  kind: 'manifest';
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}
export type ParsedImageDocument = ParsedIndex | ParsedManifest;

function refuse(what: string, problem: string, check = 'image-manifest'): EcluseError {
  return new EcluseError('E_IMAGE_MANIFEST', `${what} ${problem}`, { check });
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'is malformed';
  return `is malformed: ${issue.path.length ? issue.path.join('.') : '(top)'}: ${issue.message}`;
}

/**
 * Parses a manifest or index of `mediaType` (the type its descriptor, or the registry, gave it). `what` names it in
 * refusals (`manifest sha256:… of acme/app`). Refuses (E_IMAGE_MANIFEST) what is over a bound, malformed, of an
 * unknown media type, declares a media type other than `mediaType`, or names a config, layer or child of a type écluse
 * does not carry.
 */
export function parseImageDocument(bytes: Buffer, mediaType: string, what: string): ParsedImageDocument {
  const index = isIndexMediaType(mediaType);
  if (!index && !isManifestMediaType(mediaType)) {
    throw refuse(what, `has the media type ${mediaType}, which is not an image manifest or index écluse reads`);
  }
  const raw = parseBoundedJson(bytes, what, LIMITS.imageManifestBytes, {
    code: 'E_IMAGE_MANIFEST',
    maxDepth: LIMITS.imageJsonDepth,
    check: checkId('image-manifest'),
  });
  const declared = (raw as { mediaType?: unknown } | null)?.mediaType;
  if (declared !== undefined && declared !== mediaType) {
    throw refuse(what, `says it is ${JSON.stringify(declared).slice(0, 200)} but was given as ${mediaType}`);
  }
  if (index) {
    const p = indexSchema.safeParse(raw);
    if (!p.success) throw refuse(what, firstIssue(p.error));
    for (const [i, m] of p.data.manifests.entries()) {
      if (isIndexMediaType(m.mediaType)) {
        throw refuse(what, `names another index (entry ${i}, ${m.digest}): nested indexes are not carried`);
      }
      if (!isManifestMediaType(m.mediaType)) {
        throw refuse(what, `entry ${i} (${m.digest}) has the media type ${m.mediaType}, not an image manifest`);
      }
      if (m.urls) throw refuse(what, `entry ${i} (${m.digest}) is foreign content fetched from URLs`);
      if (m.size > LIMITS.imageManifestBytes) {
        throw refuse(what, `entry ${i} (${m.digest}) is ${m.size} bytes, over the ${LIMITS.imageManifestBytes} bound`);
      }
    }
    return { kind: 'index', mediaType, manifests: p.data.manifests };
  }
  const p = manifestSchema.safeParse(raw);
  if (!p.success) throw refuse(what, firstIssue(p.error));
  const { config, layers } = p.data;
  if (!CONFIG_MEDIA_TYPES.includes(config.mediaType)) {
    throw refuse(what, `has a config of media type ${config.mediaType}, not an image config`);
  }
  if (config.size > LIMITS.imageConfigBytes) {
    throw refuse(what, `has a config of ${config.size} bytes, over the ${LIMITS.imageConfigBytes} bound`);
  }
  for (const [i, l] of layers.entries()) {
    if (l.urls)
      throw refuse(what, `layer ${i} (${l.digest}) is a foreign layer fetched from URLs, not a registry blob`);
    if (!LAYER_MEDIA_TYPES.includes(l.mediaType)) {
      throw refuse(what, `layer ${i} (${l.digest}) has the media type ${l.mediaType}, not a layer écluse carries`);
    }
  }
  return { kind: 'manifest', mediaType, config, layers };
}

const configSchema = z.object({
  os: platformWord.optional(),
  architecture: platformWord.optional(),
  variant: platformWord.optional(),
});

/** What écluse reads of an image config: its platform, when it names one. */
export interface ParsedConfig {
  os?: string | undefined;
  architecture?: string | undefined;
  variant?: string | undefined;
}

/** Parses an image config within its bounds (8 MiB, 16 levels); refuses a config that is not a JSON object. */
export function parseImageConfig(bytes: Buffer, what: string): ParsedConfig {
  const raw = parseBoundedJson(bytes, what, LIMITS.imageConfigBytes, {
    code: 'E_IMAGE_MANIFEST',
    maxDepth: LIMITS.imageJsonDepth,
    check: checkId('image-config'),
  });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw refuse(what, 'is not a JSON object', 'image-config');
  const p = configSchema.safeParse(raw);
  if (!p.success) throw refuse(what, firstIssue(p.error), 'image-config');
  return p.data;
}
