/**
 * Pushing verified container images into the site's own registries, byte for byte from the registry store: every blob
 * first (a HEAD skips those the target has, the rest are uploaded monolithically), then the child manifests by
 * digest, then the top manifest by the image's tag. The digest the target answers with must be the signed one (the
 * vendor's): a target that rewrote a manifest is refused (the manifest it made is deleted where deletes are allowed)
 * and not retried; a HEAD of the tag then confirms it. Other failures are retried (3 attempts), every attempt is
 * audited and the outcome recorded in `target_pushes`, as for Glance targets. Never throws.
 *
 * A container image is named `<repository>:<tag>` in the push records and in `ecluse target push --image`.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { EcluseError } from '../../sneakernet/errors.js';
import { subjectName } from '../../sneakernet/subject.js';
import { appendAudit } from '../audit.js';
import type { Db } from '../db.js';
import { blobFile } from '../registry/blob-store.js';
import { blobsOfImage, imageByTag, MANIFEST_MEDIA_TYPES, type ContainerImage } from '../registry/images.js';
import { recordPush } from './push-records.js';
import type { PushResult } from './push.js';
import { RegistryClient } from './registry-client.js';
import {
  credentialsOf,
  listRegistryTargets,
  remoteRepository,
  targetLocation,
  type RegistryTarget,
} from './registry-targets.js';

/** A manifest is at most 4 MiB (the distribution spec's limit, and the bundle format's). */
const MANIFEST_MAX_BYTES = 4 * 1024 * 1024;

export interface RegistryPushOptions {
  attempts?: number;
  retryDelayMs?: number;
  /** For tests: the client of a target. */
  client?: (t: RegistryTarget) => RegistryClient;
}

/** What one successful push did. */
export interface RegistryPushed {
  /** `host/repository@digest` at the target. */
  remote: string;
  uploaded: number;
  skipped: number;
  uploadedBytes: number;
}

/** The name of a container image in push records: `<repository>:<tag>`. */
export const imageKey = (i: Pick<ContainerImage, 'repository' | 'tag'>): string => `${i.repository}:${i.tag}`;

/** The image a key names (the newest under that tag), or undefined. */
export function imageOfKey(db: Db, key: string): ContainerImage | undefined {
  const colon = key.lastIndexOf(':');
  if (colon <= 0 || key.includes('/', colon)) return undefined;
  return imageByTag(db, key.slice(0, colon), key.slice(colon + 1));
}

const isManifest = (mediaType: string) => (MANIFEST_MEDIA_TYPES as readonly string[]).includes(mediaType);

/** An error that another attempt would meet again: the target rewrote a manifest, or the store is damaged. */
function final(e: unknown): boolean {
  return e instanceof EcluseError && ['target-digest', 'store-blob'].includes(String(e.context.check));
}

function digestMismatch(what: string, answered: string, signed: string): EcluseError {
  return new EcluseError(
    'E_TARGET',
    `the target stored ${what} as ${answered}, not as the signed ${signed} (it rewrote the manifest: a registry that converts media types cannot hold the vendor's image)`,
    { check: 'target-digest', answered, signed },
  );
}

/** A stored manifest, re-hashed before it is sent (a damaged store never reaches the target under a vendor digest). */
function manifestBytes(blobsDir: string, digest: string, size: number): Buffer {
  if (size > MANIFEST_MAX_BYTES) {
    throw new EcluseError('E_STORE', `the stored manifest ${digest} is larger than 4 MiB`, { check: 'store-blob' });
  }
  const bytes = fs.readFileSync(blobFile(blobsDir, digest));
  if (`sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest) {
    throw new EcluseError(
      'E_STORE',
      `the stored manifest ${digest} no longer has that digest: run "ecluse store check"`,
      { check: 'store-blob', digest },
    );
  }
  return bytes;
}

async function attempt(
  client: RegistryClient,
  target: RegistryTarget,
  db: Db,
  blobsDir: string,
  image: ContainerImage,
): Promise<RegistryPushed> {
  const repository = remoteRepository(target, image.repository);
  const blobs = blobsOfImage(db, image.id);
  const top = blobs[0];
  if (!top || top.digest !== image.digest) {
    throw new EcluseError('E_STORE', `the blobs recorded for ${imageKey(image)} do not start with its manifest`, {
      check: 'store-blob',
    });
  }
  let uploaded = 0;
  let skipped = 0;
  let uploadedBytes = 0;
  for (const b of blobs.filter((x) => !isManifest(x.mediaType))) {
    if (await client.hasBlob(repository, b.digest)) {
      skipped++;
      continue;
    }
    await client.uploadBlob(repository, b.digest, blobFile(blobsDir, b.digest), b.size);
    uploaded++;
    uploadedBytes += b.size;
  }
  // Child manifests before the manifest naming them (in reverse of the signed order: the top one is first there).
  const children = blobs.slice(1).filter((x) => isManifest(x.mediaType));
  for (const m of children.reverse()) {
    const answered = await client.putManifest(
      repository,
      m.digest,
      m.mediaType,
      manifestBytes(blobsDir, m.digest, m.size),
    );
    if (answered && answered !== m.digest) throw digestMismatch(`manifest ${m.digest}`, answered, m.digest);
  }
  const answered = await client.putManifest(
    repository,
    image.tag,
    top.mediaType,
    manifestBytes(blobsDir, top.digest, top.size),
  );
  if (answered && answered !== image.digest) {
    let cleanup = '';
    try {
      cleanup = (await client.deleteManifest(repository, answered))
        ? `; the manifest it made was deleted`
        : `; delete ${repository}@${answered} there by hand (the registry does not allow deletes)`;
    } catch (e) {
      cleanup = `; the manifest it made could NOT be deleted: ${(e as Error).message}`;
    }
    const err = digestMismatch(`${repository}:${image.tag}`, answered, image.digest);
    throw new EcluseError(err.code, err.message + cleanup, err.context);
  }
  const served = await client.manifestDigest(repository, image.tag, top.mediaType);
  if (served !== image.digest) throw digestMismatch(`${repository}:${image.tag}`, served ?? 'nothing', image.digest);
  return {
    remote: `${targetLocation(target.url).host}/${repository}@${image.digest}`,
    uploaded,
    skipped,
    uploadedBytes,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Pushes one container image to one registry target, with retries; records and audits. */
export async function pushContainerImage(
  db: Db,
  blobsDir: string,
  target: RegistryTarget,
  image: ContainerImage,
  opts: RegistryPushOptions = {},
): Promise<PushResult> {
  const o = { attempts: 3, retryDelayMs: 1_000, ...opts };
  const client = opts.client
    ? opts.client(target)
    : new RegistryClient(targetLocation(target.url).origin, credentialsOf(target.auth));
  const base = { target: target.name, imageId: imageKey(image) };
  const artifact = subjectName({ name: image.name, version: image.version });
  let lastError = '';
  let n = 1;
  for (; n <= o.attempts; n++) {
    recordPush(db, { ...base, remoteId: null, status: 'pending', message: `attempt ${n}`, attempts: n });
    try {
      const done = await attempt(client, target, db, blobsDir, image);
      const message = `image ${imageKey(image)} pushed to ${target.name} as ${done.remote} (${done.uploaded} blob(s) uploaded, ${done.skipped} already there; the target's digest is the signed one)`;
      db.transaction(() => {
        recordPush(db, { ...base, remoteId: done.remote, status: 'active', message, attempts: n });
        appendAudit(db, {
          kind: 'target.pushed',
          outcome: 'info',
          message,
          bundleId: image.bundleId,
          artifact,
          details: {
            target: target.name,
            url: target.url,
            image: imageKey(image),
            digest: image.digest,
            remote: done.remote,
            uploaded: done.uploaded,
            skipped: done.skipped,
            uploadedBytes: done.uploadedBytes,
            attempts: n,
          },
        });
      })();
      return { ...base, remoteId: done.remote, ok: true, attempts: n, message };
    } catch (e) {
      lastError = (e as Error).message;
      const stop = final(e);
      appendAudit(db, {
        kind:
          stop && (e as EcluseError).context.check === 'target-digest'
            ? 'target.push-refused'
            : 'target.push-attempt-failed',
        outcome: 'fail',
        code: 'E_TARGET',
        message: `push of ${imageKey(image)} to ${target.name}, attempt ${n}/${o.attempts}: ${lastError}`,
        bundleId: image.bundleId,
        artifact,
        details: { target: target.name, url: target.url, image: imageKey(image), digest: image.digest, attempt: n },
      });
      if (stop) break;
      if (n < o.attempts) await sleep(o.retryDelayMs * n);
    }
  }
  const attempts = Math.min(n, o.attempts);
  const message = `push of ${imageKey(image)} to ${target.name} failed after ${attempts} attempt(s): ${lastError}`;
  recordPush(db, { ...base, remoteId: null, status: 'failed', message, attempts });
  return { ...base, remoteId: null, ok: false, attempts, message };
}

/** Pushes the given container images to every registry target (none configured: nothing to do). Never throws. */
export async function pushToRegistryTargets(
  db: Db,
  blobsDir: string,
  images: readonly ContainerImage[],
  opts: RegistryPushOptions = {},
): Promise<PushResult[]> {
  const results: PushResult[] = [];
  let targets: RegistryTarget[];
  try {
    targets = listRegistryTargets(db);
  } catch {
    return results;
  }
  for (const t of targets) {
    for (const image of images) {
      try {
        results.push(await pushContainerImage(db, blobsDir, t, image, opts));
      } catch (e) {
        const message = (e as Error).message;
        results.push({ target: t.name, imageId: imageKey(image), remoteId: null, ok: false, attempts: 0, message });
      }
    }
  }
  return results;
}
