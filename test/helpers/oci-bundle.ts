/**
 * oci-image statements built in the test: a real bundle written by `ecluse export` (a small VM image, signed by the
 * site's signer) is rewritten into a bundle of container images, with its volume written by the real volume writer
 * (sneakernet/volume-writer.ts) and the statement re-signed by the same signer, exactly as the export station signs.
 * Each image can be made wrong in one precise way (a blob's bytes changed, a blob left out, a blob marked as not
 * carried), everything else staying consistent, so that the refusal comes from the one check under test.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { LoadedSigner } from '../../keys/signer.js';
import { planVolumes } from '../../sneakernet/volume-plan.js';
import { writeVolume } from '../../sneakernet/volume-writer.js';
import { editAndResign } from './hostile.js';
import type { TestBlob, TestImage } from './oci-image.js';
import type { BundleOnMedia } from './world.js';

export interface OciArtifactSpec {
  image: TestImage;
  name: string;
  version: string;
  repository: string;
  tag: string;
  /** Blobs listed but not carried (the station must hold them). */
  notCarried?: ReadonlySet<string>;
  /** Blobs left out of the statement's list and of the stream (a manifest then names an unlisted blob). */
  unlisted?: ReadonlySet<string>;
  /** Changes the carried bytes of one blob (the artifact's digests follow, so only the blob's own check fails). */
  corrupt?: string;
  evidence?: Record<string, unknown>;
}

const hex = (algorithm: string, b: Buffer) => crypto.createHash(algorithm).update(b).digest('hex');

function carriedBytes(spec: OciArtifactSpec, blob: TestBlob): Buffer {
  if (spec.corrupt !== blob.digest) return blob.bytes;
  const b = Buffer.from(blob.bytes);
  b[b.length - 1] = (b[b.length - 1] as number) ^ 0xff;
  return b;
}

/**
 * Rewrites `bundle` (one exported by the real CLI) into one carrying `specs` as oci-image artifacts, re-signed by
 * `signer`. `edit` may change the statement further before it is signed.
 */
export async function rewriteAsOciBundle(
  bundle: BundleOnMedia,
  signer: LoadedSigner,
  specs: OciArtifactSpec[],
  edit?: (statement: Record<string, unknown>) => void,
): Promise<void> {
  const work = fs.mkdtempSync(path.join(path.dirname(bundle.root), '.oci-'));
  try {
    const artifacts: Array<Record<string, unknown>> = [];
    const sources: Array<{ file: string }> = [];
    for (const [i, spec] of specs.entries()) {
      const listed = spec.image.blobs.filter((b) => !spec.unlisted?.has(b.digest));
      const carried = listed.filter((b) => !spec.notCarried?.has(b.digest));
      const stream = Buffer.concat(carried.map((b) => carriedBytes(spec, b)));
      const file = path.join(work, `artifact-${i}`);
      fs.writeFileSync(file, stream);
      sources.push({ file });
      artifacts.push({
        name: spec.name,
        version: spec.version,
        type: 'oci-image',
        size: stream.length,
        sha256: hex('sha256', stream),
        sha512: hex('sha512', stream),
        properties: {},
        provenance: {
          vendor: 'acme',
          source: `docker://vendor.example:5000/${spec.repository}:${spec.tag}`,
          addedAt: '2026-01-01T00:00:00Z',
          ...(spec.evidence ? { evidence: spec.evidence } : {}),
        },
        image: {
          repository: spec.repository,
          tag: spec.tag,
          digest: spec.image.top.digest,
          mediaType: spec.image.top.mediaType,
          platforms: spec.image.platforms,
          blobs: listed.map((b) => ({
            digest: b.digest,
            size: b.size,
            mediaType: b.mediaType,
            carried: !spec.notCarried?.has(b.digest),
          })),
        },
      });
    }
    const planned = planVolumes(
      artifacts.map((a) => ({ sha256: a.sha256 as string, size: a.size as number })),
      1024 * 1024 * 1024,
    );
    for (const v of bundle.volumes) fs.rmSync(path.join(bundle.volumesDir, v));
    const volumes: Array<{ name: string; size: number; sha256: string; entries: unknown[] }> = [];
    for (const plan of planned) {
      const written = await writeVolume(plan, sources, path.join(bundle.volumesDir, plan.name), new Date(0));
      volumes.push({ name: written.name, size: written.size, sha256: written.sha256, entries: plan.entries });
    }
    bundle.volumes.splice(0, bundle.volumes.length, ...planned.map((p) => p.name));
    await editAndResign(bundle, [signer], (s) => {
      const predicate = s.predicate as Record<string, unknown>;
      predicate.artifacts = artifacts;
      predicate.volumes = volumes;
      s.subject = artifacts.map((a) => ({
        name: `${a.name as string}@${a.version as string}`,
        digest: { sha256: a.sha256, sha512: a.sha512 },
      }));
      edit?.(s);
    });
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Everything the registry of an import home holds: its rows and the files of its blob store. */
export function registrySnapshot(home: string): { rows: unknown[]; files: string[]; staging: string[] } {
  const db = new Database(path.join(home, 'ecluse.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const rows = ['registry_blobs', 'container_images', 'container_image_blobs'].map((t) =>
      db.prepare(`SELECT * FROM ${t} ORDER BY rowid`).all(),
    );
    const blobs = path.join(home, 'registry', 'blobs', 'sha256');
    const files = fs.existsSync(blobs) ? fs.readdirSync(blobs).sort() : [];
    const stagingDir = path.join(home, 'store', 'staging');
    const staging = fs.existsSync(stagingDir) ? fs.readdirSync(stagingDir, { recursive: true }).map(String) : [];
    return { rows, files, staging };
  } finally {
    db.close();
  }
}
