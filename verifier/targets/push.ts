/**
 * Staging verified images into the site's own Glance: for each target, create the image (properties, provenance and
 * img_signature* included), upload the verified bytes from the store, wait for `active`, compare `checksum` and
 * `os_hash_value` with the catalog's (the bundle's digests), and record the remote id. A failed attempt deletes the
 * remote image it created, then the push is retried (3 attempts); every step is audited. Never throws: a push that
 * still fails is recorded `failed` (see `ecluse target list`, `ecluse target push` to retry).
 */
import path from 'node:path';
import { subjectName } from '../../sneakernet/subject.js';
import { appendAudit } from '../audit.js';
import type { Db } from '../db.js';
import { imageById, type ImageRow } from '../image-catalog.js';
import { extraProperties, imageTags } from '../glance/record.js';
import { GlanceClient } from './client.js';
import { recordPush } from './push-records.js';
import { listTargets, type Target } from './targets.js';
import { EcluseError } from '../../sneakernet/errors.js';

export interface PushOptions {
  attempts?: number;
  /** How long to wait for `active` after the upload. */
  activeTimeoutMs?: number;
  pollMs?: number;
  retryDelayMs?: number;
  /** For tests: a client per target. */
  client?: (t: Target) => GlanceClient;
}

export interface PushResult {
  target: string;
  imageId: string;
  remoteId: string | null;
  ok: boolean;
  attempts: number;
  message: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The create body for the remote image: the catalog's writable attributes and every extra property. */
export function remoteRecord(
  row: ImageRow,
  visibility: Target['options']['visibility'] = 'keep',
): Record<string, unknown> {
  return {
    ...extraProperties(row),
    ecluse_image_id: row.id,
    name: row.name,
    disk_format: row.disk_format,
    container_format: row.container_format,
    visibility: visibility === 'keep' ? row.visibility : visibility,
    min_disk: row.min_disk,
    min_ram: row.min_ram,
    tags: imageTags(row),
  };
}

async function attempt(
  client: GlanceClient,
  target: Target,
  row: ImageRow,
  file: string,
  o: Required<Omit<PushOptions, 'client'>>,
  onCreated: (id: string) => void,
): Promise<string> {
  const body = remoteRecord(row, target.options.visibility);
  const later: Record<string, string> = {};
  if (target.options.signatures === 'after-upload') {
    for (const k of Object.keys(body).filter((k) => k.startsWith('img_signature'))) {
      later[k] = body[k] as string;
      delete body[k];
    }
  }
  const created = await client.createImage(body);
  const remoteId = String(created.id);
  onCreated(remoteId);
  await client.uploadFile(remoteId, file);
  const deadline = Date.now() + o.activeTimeoutMs;
  let remote = await client.getImage(remoteId);
  while (remote.status !== 'active') {
    if (remote.status === 'killed' || remote.status === 'deleted' || Date.now() > deadline) {
      throw new EcluseError('E_TARGET', `the remote image is ${String(remote.status)}, not active`, {
        check: 'target-push',
      });
    }
    await sleep(o.pollMs);
    remote = await client.getImage(remoteId);
  }
  if (remote.checksum !== row.checksum) {
    throw new EcluseError(
      'E_TARGET',
      `the remote checksum ${String(remote.checksum)} is not the bundle's ${String(row.checksum)}`,
      { check: 'target-push' },
    );
  }
  if (remote.os_hash_value !== row.os_hash_value) {
    throw new EcluseError('E_TARGET', `the remote os_hash_value does not match the bundle's sha512`, {
      check: 'target-push',
    });
  }
  if (Object.keys(later).length > 0) {
    await client.request('PATCH', `/v2/images/${remoteId}`, {
      json: Object.entries(later).map(([k, v]) => ({ op: 'add', path: `/${k}`, value: v })),
      type: 'application/openstack-images-v2.1-json-patch',
      ok: [200],
    });
  }
  return remoteId;
}

/** Pushes one image to one target, with retries; records and audits. */
export async function pushImage(
  db: Db,
  imagesDir: string,
  target: Target,
  imageId: string,
  opts: PushOptions = {},
): Promise<PushResult> {
  const o = { attempts: 3, activeTimeoutMs: 600_000, pollMs: 500, retryDelayMs: 1_000, ...opts };
  const client = opts.client ? opts.client(target) : new GlanceClient(target.url, target.auth);
  const row = imageById(db, imageId);
  const base = { target: target.name, imageId };
  if (!row || !row.file || row.status !== 'active') {
    const message = `image ${imageId} has no active data to push`;
    recordPush(db, { ...base, remoteId: null, status: 'failed', message, attempts: 0 });
    return { ...base, remoteId: null, ok: false, attempts: 0, message };
  }
  const file = path.join(imagesDir, path.basename(row.file));
  const artifact = row.artifact_name
    ? subjectName({ name: row.artifact_name, version: row.artifact_version ?? '' })
    : null;
  let lastError = '';
  for (let n = 1; n <= o.attempts; n++) {
    recordPush(db, { ...base, remoteId: null, status: 'pending', message: `attempt ${n}`, attempts: n });
    let remoteId: string | null = null;
    try {
      remoteId = await attempt(client, target, row, file, o, (id) => {
        remoteId = id;
        recordPush(db, {
          ...base,
          remoteId: id,
          status: 'pending',
          message: `attempt ${n}: created, uploading`,
          attempts: n,
        });
      });
      const message = `image ${row.name ?? imageId} pushed to ${target.name} as ${remoteId} (checksum and sha512 match)`;
      db.transaction(() => {
        recordPush(db, { ...base, remoteId, status: 'active', message, attempts: n });
        appendAudit(db, {
          kind: 'target.pushed',
          outcome: 'info',
          message,
          bundleId: row.bundle_id,
          artifact,
          details: { target: target.name, url: target.url, imageId, remoteId, attempts: n, checksum: row.checksum },
        });
      })();
      return { ...base, remoteId, ok: true, attempts: n, message };
    } catch (e) {
      lastError = (e as Error).message;
      let cleanup = '';
      if (remoteId) {
        try {
          await client.deleteImage(remoteId);
          cleanup = `; the partial remote image ${remoteId} was deleted`;
        } catch (d) {
          cleanup = `; the partial remote image ${remoteId} could NOT be deleted: ${(d as Error).message}`;
        }
      }
      appendAudit(db, {
        kind: 'target.push-attempt-failed',
        outcome: 'fail',
        code: 'E_TARGET',
        message: `push of ${row.name ?? imageId} to ${target.name}, attempt ${n}/${o.attempts}: ${lastError}${cleanup}`,
        bundleId: row.bundle_id,
        artifact,
        details: { target: target.name, url: target.url, imageId, remoteId, attempt: n },
      });
      lastError += cleanup;
      if (n < o.attempts) await sleep(o.retryDelayMs * n);
    }
  }
  const message = `push of ${row.name ?? imageId} to ${target.name} failed after ${o.attempts} attempts: ${lastError}`;
  recordPush(db, { ...base, remoteId: null, status: 'failed', message, attempts: o.attempts });
  return { ...base, remoteId: null, ok: false, attempts: o.attempts, message };
}

/** Pushes the given images to every configured target (none configured: nothing to do). Never throws. */
export async function pushToTargets(
  db: Db,
  imagesDir: string,
  imageIds: string[],
  opts: PushOptions = {},
): Promise<PushResult[]> {
  const results: PushResult[] = [];
  let targets: Target[];
  try {
    targets = listTargets(db);
  } catch {
    return results;
  }
  for (const t of targets) {
    for (const id of imageIds) {
      try {
        results.push(await pushImage(db, imagesDir, t, id, opts));
      } catch (e) {
        results.push({
          target: t.name,
          imageId: id,
          remoteId: null,
          ok: false,
          attempts: 0,
          message: (e as Error).message,
        });
      }
    }
  }
  return results;
}
