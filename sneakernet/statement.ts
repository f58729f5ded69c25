/**
 * The bundle statement (format v1): an in-toto Statement whose subjects are the artifacts and whose predicate says
 * everything the import station checks. It is the DSSE payload each operator signs; docs/FORMAT.md describes it.
 * The schema is strict: unknown keys, wrong types and out-of-bound values are refused (E_FORMAT).
 */
import { z } from 'zod';
import { parseBoundedJson } from './bounded-json.js';
import { EcluseError } from './errors.js';
import { LIMITS } from './limits.js';
import { bundleBlobProblem, ociImageProblem, ociImageSchema } from './oci/statement-image.js';
import { deltaProblem, deltaSchema, transferSize, type Delta } from './delta.js';
import { vendorEvidenceSchema } from './evidence.js';
import { artifactSize, identifier, imageName, md5Hex, sha256Hex, sha512Hex } from './schema-parts.js';
import { subjectName } from './subject.js';
import { CONTAINER_FORMATS, DISK_FORMATS, propertyKey } from './glance-vocabulary.js';
import { checkId } from './check-ids.js';
import { ECLUSE_PACKAGE_NAME, packageFieldsSchema } from './ecluse-package.js';

export { md5Hex, sha256Hex, sha512Hex };
/** Bounded JSON parsing, re-exported for its importers (it lives in bounded-json.ts). */
export { parseBoundedJson };
/** The delta recipe (4.6) and the artifact key, re-exported for their importers (they live in delta.ts, subject.ts). */
export { deltaSchema, subjectName, type Delta };
/** The Glance vocabulary the statement uses, re-exported for its importers (it lives in glance-vocabulary.ts). */
export { CONTAINER_FORMATS, DISK_FORMATS, propertyKey };

export const FORMAT_VERSION = 1;
export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE = 'https://ecluse.dev/bundle/v1';
/** DSSE payload type of the signed statement. */
export const PAYLOAD_TYPE = 'application/vnd.in-toto+json';

/** UTC to the second, `YYYY-MM-DDTHH:MM:SSZ`: one spelling per instant, so text order is time order. */
const isoTime = z.iso.datetime({ offset: false, precision: 0 });
const size = artifactSize;
/** Lowercase RFC 9562 UUIDs only (the same spelling as the bundle folder name). */
const uuid = z.uuid().regex(/^[0-9a-f-]+$/, 'lowercase');

const properties = z
  .record(propertyKey, z.string().max(LIMITS.propertyValueLength))
  .refine((p) => Object.keys(p).length <= LIMITS.properties, `at most ${LIMITS.properties} properties`);

export const provenanceSchema = z.strictObject({
  /** Who published the artifact (free text at v1; vendor feeds fill it). */
  vendor: z.string().max(LIMITS.nameLength).nullable(),
  /** Where the export station took it from (a file name or URL), for the record only. */
  source: z.string().max(4096),
  /** When it entered the export station's catalog. */
  addedAt: isoTime,
  /** Optional (4.5): the vendor's signature material, re-verified inside when the policy pins vendor keys. */
  evidence: vendorEvidenceSchema.optional(),
});

/** A VM image (the artifact type of v1 from the start): staged into the Glance-compatible store. */
export const vmImageArtifactSchema = z.strictObject({
  /** An image name (4.7): spaces and non-ASCII letters allowed, NFC, no control characters, at most 255. */
  name: imageName,
  version: identifier,
  type: z.literal('vm-image'),
  size,
  sha256: sha256Hex,
  sha512: sha512Hex,
  /**
   * Optional (4.8): the artifact's MD5 (Glance's `checksum`), computed by the export station in the pass that computed
   * sha256 and sha512. The import station takes it, and `sha512`, as signed attestations; it verifies sha256 over
   * every byte (and all three when its policy says `verifyAllDigests`). Absent: the import station computes it.
   */
  md5: md5Hex.optional(),
  diskFormat: z.enum(DISK_FORMATS),
  containerFormat: z.enum(CONTAINER_FORMATS),
  properties,
  provenance: provenanceSchema,
  delta: deltaSchema.optional(),
});

/**
 * An OCI image (4.9, an addition): a manifest or index and the blobs it needs. Its carried bytes (size, sha256,
 * sha512, the volume entries) are its carried blobs back to back, in `image.blobs` order. No delta, md5 or Glance
 * formats.
 */
export const ociImageArtifactSchema = z.strictObject({
  name: imageName,
  version: identifier,
  type: z.literal('oci-image'),
  size,
  sha256: sha256Hex,
  sha512: sha512Hex,
  properties,
  provenance: provenanceSchema,
  image: ociImageSchema,
});

/**
 * écluse's own package (4.10, an addition): a Debian package named `ecluse`, handed to the privileged installer
 * inside, never to the image store. `version` is the package's Debian version; no delta, no md5; the Glance members
 * keep their one value so the artifact has the shape of any other.
 */
export const ecluseArtifactSchema = z.strictObject({
  name: z.literal(ECLUSE_PACKAGE_NAME),
  version: identifier,
  type: z.literal('ecluse-package'),
  size,
  sha256: sha256Hex,
  sha512: sha512Hex,
  diskFormat: z.literal('raw'),
  containerFormat: z.literal('bare'),
  properties: z.strictObject({}),
  provenance: provenanceSchema,
  package: packageFieldsSchema,
});

/** An artifact: a union on `type` (`vm-image`, `oci-image`, `ecluse-package`). */
export const artifactSchema = z.discriminatedUnion('type', [
  vmImageArtifactSchema,
  ociImageArtifactSchema,
  ecluseArtifactSchema,
]);

/** One tar entry of a volume: a piece `[offset, offset+size)` of an artifact, under a content-addressed path. */
export const entrySchema = z.strictObject({
  path: z.string().max(200),
  artifact: z
    .number()
    .int()
    .nonnegative()
    .max(LIMITS.artifacts - 1),
  offset: size,
  size,
});

export const volumeSchema = z.strictObject({
  name: z.string().regex(/^vol-[0-9]{4,5}\.tar$/, 'vol-NNNN.tar'),
  size: z.number().int().positive().max(LIMITS.volumeBytes),
  sha256: sha256Hex,
  entries: z.array(entrySchema).min(1).max(LIMITS.entriesPerVolume),
});

export const predicateSchema = z.strictObject({
  formatVersion: z.literal(FORMAT_VERSION),
  bundleId: uuid,
  station: identifier,
  sequence: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  previous: z
    .strictObject({ bundleId: uuid, sequence: z.number().int().positive(), statementSha256: sha256Hex })
    .nullable(),
  site: identifier,
  created: isoTime,
  expires: isoTime,
  volumes: z.array(volumeSchema).min(1).max(LIMITS.volumes),
  artifacts: z.array(artifactSchema).min(1).max(LIMITS.artifacts),
});

export const statementSchema = z.strictObject({
  _type: z.literal(STATEMENT_TYPE),
  subject: z
    .array(
      z.strictObject({ name: z.string().max(600), digest: z.strictObject({ sha256: sha256Hex, sha512: sha512Hex }) }),
    )
    .min(1)
    .max(LIMITS.artifacts),
  predicateType: z.literal(PREDICATE_TYPE),
  predicate: predicateSchema,
});

export type Artifact = z.infer<typeof artifactSchema>;
export type VmImageArtifact = z.infer<typeof vmImageArtifactSchema>;
export type OciImageArtifact = z.infer<typeof ociImageArtifactSchema>;
export type EcluseArtifact = z.infer<typeof ecluseArtifactSchema>;

export function isVmImage(a: Artifact): a is VmImageArtifact {
  return a.type === 'vm-image';
}

export function isOciImage(a: Artifact): a is OciImageArtifact {
  return a.type === 'oci-image';
}

export function isEclusePackage(a: Artifact): a is EcluseArtifact {
  return a.type === 'ecluse-package';
}

/** The delta recipe of an artifact (4.6): only VM images travel as deltas. */
export function deltaOf(a: Artifact): Delta | undefined {
  return a.type === 'vm-image' ? a.delta : undefined;
}
export type VolumeEntry = z.infer<typeof entrySchema>;
export type Volume = z.infer<typeof volumeSchema>;
export type Predicate = z.infer<typeof predicateSchema>;
export type Statement = z.infer<typeof statementSchema>;

/**
 * Path of a tar entry: `blobs/sha256/<hex>` for an artifact stored whole, `blobs/sha256/<hex>.partNNNN` (1-based)
 * for piece N of an artifact spread over several entries.
 */
export function entryPath(sha256: string, piece: number, pieces: number): string {
  return pieces === 1 ? `blobs/sha256/${sha256}` : `blobs/sha256/${sha256}.part${String(piece).padStart(4, '0')}`;
}

export function volumeName(index: number): string {
  return `vol-${String(index + 1).padStart(4, '0')}.tar`;
}

/**
 * The only size a v1 volume can have: a 512-byte header and the data padded to 512 per entry, then the two zero
 * blocks that end the archive. Nothing else may be in a volume.
 */
export function canonicalVolumeSize(entries: ReadonlyArray<{ size: number }>): number {
  return entries.reduce((sum, e) => sum + 512 + Math.ceil(e.size / 512) * 512, 1024);
}

/** The one spelling of times in signed documents: UTC to the second, `YYYY-MM-DDTHH:MM:SSZ`. */
export function isoSeconds(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** Serialises a statement for signing: stable key order as built, no whitespace. */
export function encodeStatement(s: Statement): Buffer {
  return Buffer.from(JSON.stringify(s), 'utf8');
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.join('.') : '(top)';
  return `${where}: ${issue.message}`;
}

/**
 * Parses and checks the statement (the verified DSSE payload). Besides the schema, checks the internal consistency
 * a reader relies on: subjects equal the artifacts, every artifact is covered exactly once, in order, by the volume
 * entries, entry paths are the content-addressed ones, volume names are consecutive.
 */
export function parseStatement(payload: Buffer): Statement {
  const raw = parseBoundedJson(payload, 'the statement', LIMITS.statementBytes);
  const parsed = statementSchema.safeParse(raw);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    throw new EcluseError('E_FORMAT', `the statement is malformed: ${first ? describeIssue(first) : 'unknown'}`, {
      check: checkId('statement-schema'),
    });
  }
  checkConsistency(parsed.data);
  return parsed.data;
}

function formatError(message: string): EcluseError {
  return new EcluseError('E_FORMAT', `the statement is inconsistent: ${message}`, {
    check: checkId('statement-consistency'),
  });
}

export function checkConsistency(s: Statement): void {
  const p = s.predicate;
  if (s.subject.length !== p.artifacts.length) throw formatError('subjects and artifacts differ in number');
  p.artifacts.forEach((a, i) => {
    const subj = s.subject[i];
    if (!subj || subj.name !== subjectName(a) || subj.digest.sha256 !== a.sha256 || subj.digest.sha512 !== a.sha512) {
      throw formatError(`subject ${i} does not match artifact ${subjectName(a)}`);
    }
  });
  const seen = new Set<string>();
  for (const a of p.artifacts) {
    const key = subjectName(a);
    if (seen.has(key)) throw formatError(`artifact ${key} is listed twice`);
    seen.add(key);
    const problem = a.type === 'vm-image' ? deltaProblem(a) : a.type === 'oci-image' ? ociImageProblem(a) : null;
    if (problem) throw formatError(problem);
  }
  if (p.artifacts.filter(isEclusePackage).length > 1) throw formatError('more than one ecluse-package artifact');
  const blobProblem = bundleBlobProblem(p.artifacts.filter(isOciImage));
  if (blobProblem) throw formatError(blobProblem);
  if (Date.parse(p.expires) <= Date.parse(p.created)) throw formatError('expires is not after created');
  if ((p.sequence === 1) !== (p.previous === null)) throw formatError('only bundle 1 of a station has no predecessor');
  if (p.previous && p.previous.sequence !== p.sequence - 1) {
    throw formatError(`bundle ${p.sequence} names bundle ${p.previous.sequence} as its predecessor`);
  }
  // Entries, in volume order, must cover each artifact exactly once in order: artifact 0 from offset 0 to its size,
  // then artifact 1, ... Pieces are numbered per artifact. A delta artifact's entries cover only what travels.
  const carried = p.artifacts.map(transferSize);
  const pieces = p.artifacts.map(() => 0);
  for (const v of p.volumes) for (const e of v.entries) pieces[e.artifact] = (pieces[e.artifact] ?? 0) + 1;
  let artifact = 0;
  let offset = 0;
  let piece = 0;
  const paths = new Set<string>();
  p.volumes.forEach((v, vi) => {
    if (v.name !== volumeName(vi)) throw formatError(`volume ${vi + 1} is named ${v.name}, expected ${volumeName(vi)}`);
    for (const e of v.entries) {
      let a = p.artifacts[artifact];
      if (a && offset === carried[artifact] && piece === 0 && e.artifact === artifact + 1) {
        throw formatError(`artifact ${artifact} has no entry: the volume entries do not cover every artifact exactly`);
      }
      if (a && offset === carried[artifact] && e.artifact === artifact + 1) {
        artifact++;
        offset = 0;
        piece = 0;
        a = p.artifacts[artifact];
      }
      if (!a || e.artifact !== artifact || e.offset !== offset) {
        throw formatError(`entry ${e.path} in ${v.name} is out of order`);
      }
      if (e.size === 0 && (carried[artifact] !== 0 || piece > 0))
        throw formatError(`entry ${e.path} in ${v.name} is empty`);
      piece++;
      const expected = entryPath(a.sha256, piece, pieces[artifact] ?? 1);
      if (e.path !== expected) throw formatError(`entry ${e.path} in ${v.name} should be named ${expected}`);
      if (paths.has(e.path)) throw formatError(`entry ${e.path} appears twice`);
      paths.add(e.path);
      offset += e.size;
      if (offset > (carried[artifact] ?? 0)) {
        throw formatError(
          deltaOf(a)
            ? `entries of ${a.name} add up to more than the ${carried[artifact]} bytes it carries`
            : `entries of ${a.name} add up to more than its size`,
        );
      }
    }
  });
  const last = p.artifacts[artifact];
  if (artifact !== p.artifacts.length - 1 || !last || offset !== carried[artifact] || piece === 0) {
    throw formatError('the volume entries do not cover every artifact exactly');
  }
  for (const v of p.volumes) {
    const canonical = canonicalVolumeSize(v.entries);
    if (v.size !== canonical) throw formatError(`${v.name} is ${v.size} bytes, its entries make ${canonical}`);
  }
}
