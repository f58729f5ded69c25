/**
 * Hostile container-image bundles: a good bundle written by `ecluse export` is taken apart (the statement and each
 * artifact's byte stream, read back out of the volumes), changed in one precise way, and put back together as a
 * bundle a careless reader would accept: one canonical ustar volume (FORMAT.md 5), every artifact's size, sha256,
 * sha512, subject and chunk list (FORMAT.md 4.11) recomputed, the volume described as it is, and the statement
 * re-signed with the site's own signers (test/helpers/hostile.ts `resign`, as the export station signs). What is left wrong is only what the test
 * put there: an oci-image reader must find it by checking the image itself (FORMAT.md 4.10).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { LoadedSigner } from '../../../keys/signer.js';
import { resign, statementOf } from '../hostile.js';
import type { BundleOnMedia } from '../world.js';

const BLOCK = 512;
const hex = (algo: 'sha256' | 'sha512', b: Buffer) => crypto.createHash(algo).update(b).digest('hex');
export const digestOf = (b: Buffer): string => `sha256:${hex('sha256', b)}`;

type Entry = { path: string; artifact: number; offset: number; size: number };
type Volume = { name: string; size: number; sha256: string; entries: Entry[] };
type Artifact = Record<string, unknown> & {
  size: number;
  sha256: string;
  sha512: string;
  type: string;
  chunks?: { size: number; sha256: string };
};
type Predicate = { volumes: Volume[]; artifacts: Artifact[] };
type Subject = { name: string; digest: { sha256: string; sha512: string } };

export interface ImageBlob {
  digest: string;
  size: number;
  mediaType: string;
  carried: boolean;
}

export interface OciImageField {
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  platforms: { os: string; architecture: string; variant?: string }[];
  blobs: ImageBlob[];
}

export function predicateOf(statement: Record<string, unknown>): Predicate {
  return statement.predicate as Predicate;
}

/** The `image` field of artifact `k` (an oci-image). */
export function imageOf(statement: Record<string, unknown>, k: number): OciImageField {
  const a = predicateOf(statement).artifacts[k];
  if (!a || a.type !== 'oci-image') throw new Error(`artifact ${k} is not an oci-image`);
  return a.image as OciImageField;
}

/** The index of the first oci-image artifact. */
export function ociArtifactIndex(statement: Record<string, unknown>): number {
  const k = predicateOf(statement).artifacts.findIndex((a) => a.type === 'oci-image');
  if (k < 0) throw new Error('the bundle carries no oci-image');
  return k;
}

/** Each artifact's byte stream, read out of the volumes by the statement's entries. */
export function artifactStreams(bundle: BundleOnMedia, statement: Record<string, unknown>): Buffer[] {
  const p = predicateOf(statement);
  const streams = p.artifacts.map((a) => Buffer.alloc(a.size));
  for (const v of p.volumes) {
    const bytes = fs.readFileSync(path.join(bundle.volumesDir, v.name));
    let at = 0;
    for (const e of v.entries) {
      bytes.copy(streams[e.artifact] as Buffer, e.offset, at + BLOCK, at + BLOCK + e.size);
      at += BLOCK + Math.ceil(e.size / BLOCK) * BLOCK;
    }
  }
  return streams;
}

/** The carried blobs of an oci-image stream, by digest (split by the signed sizes, in `blobs` order). */
export function splitCarried(image: OciImageField, stream: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let at = 0;
  for (const b of image.blobs.filter((x) => x.carried)) {
    out.set(b.digest, stream.subarray(at, at + b.size));
    at += b.size;
  }
  if (at !== stream.length) throw new Error(`the carried blobs add up to ${at} bytes, the stream has ${stream.length}`);
  return out;
}

/** The stream of the carried blobs of `image`, in `blobs` order, from `bytes` (by digest). */
export function joinCarried(image: OciImageField, bytes: Map<string, Buffer>): Buffer {
  return Buffer.concat(
    image.blobs
      .filter((b) => b.carried)
      .map((b) => {
        const x = bytes.get(b.digest);
        if (!x) throw new Error(`no bytes for carried blob ${b.digest}`);
        return x;
      }),
  );
}

function header(name: string, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 'latin1');
  h.write('000644 \0', 100, 'latin1');
  h.write('000000 \0', 108, 'latin1');
  h.write('000000 \0', 116, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')} `, 124, 'latin1');
  h.write(`${mtime.toString(8).padStart(11, '0')} `, 136, 'latin1');
  h.write('0', 156, 'latin1');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  h.write('000000 \0', 329, 'latin1');
  h.write('000000 \0', 337, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/**
 * Takes the bundle apart, lets `edit` change the statement and the artifacts' streams (in place), and puts it back:
 * one volume, digests and subjects recomputed, re-signed by `signers`. Returns the new statement.
 */
export async function rewriteBundle(
  bundle: BundleOnMedia,
  signers: LoadedSigner[],
  edit: (statement: Record<string, unknown>, streams: Buffer[]) => void | Promise<void>,
): Promise<Record<string, unknown>> {
  const statement = statementOf(bundle);
  const streams = artifactStreams(bundle, statement);
  await edit(statement, streams);
  const p = predicateOf(statement);
  const subjects = statement.subject as Subject[];
  const mtime = Math.floor(Date.parse(String((statement.predicate as { created: string }).created)) / 1000);
  const parts: Buffer[] = [];
  const entries: Entry[] = [];
  p.artifacts.forEach((a, k) => {
    const s = streams[k] as Buffer;
    a.size = s.length;
    a.sha256 = hex('sha256', s);
    a.sha512 = hex('sha512', s);
    (subjects[k] as Subject).digest = { sha256: a.sha256, sha512: a.sha512 };
    // A signed chunk list (FORMAT.md 4.11) describes the new bytes too, as the export station would write it.
    if (a.chunks) a.chunks = chunkListOf(s, a.chunks.size);
    const name = `blobs/sha256/${a.sha256}`;
    entries.push({ path: name, artifact: k, offset: 0, size: s.length });
    parts.push(header(name, s.length, mtime), s, Buffer.alloc((BLOCK - (s.length % BLOCK)) % BLOCK));
  });
  parts.push(Buffer.alloc(2 * BLOCK));
  const volume = Buffer.concat(parts);
  for (const v of p.volumes) fs.rmSync(path.join(bundle.volumesDir, v.name), { force: true });
  fs.writeFileSync(path.join(bundle.volumesDir, 'vol-0001.tar'), volume);
  p.volumes = [{ name: 'vol-0001.tar', size: volume.length, sha256: hex('sha256', volume), entries }];
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  await resign(bundle, signers, { payload });
  return statement;
}

/** The chunk list of `bytes` in chunks of `size` (FORMAT.md 4.11), computed here, independently of the writer. */
function chunkListOf(bytes: Buffer, size: number): { size: number; sha256: string } {
  const digests: string[] = [];
  for (let at = 0; at < bytes.length; at += size) digests.push(hex('sha256', bytes.subarray(at, at + size)));
  return { size, sha256: digests.join('') };
}

/**
 * Changes the carried blobs of the bundle's (first) oci-image: `edit` may change `image` and the bytes by digest (and
 * the rest of the statement, e.g. drop vendor evidence that names the old digest).
 */
export async function rewriteImage(
  bundle: BundleOnMedia,
  signers: LoadedSigner[],
  edit: (image: OciImageField, bytes: Map<string, Buffer>, statement: Record<string, unknown>) => void,
): Promise<Record<string, unknown>> {
  return rewriteBundle(bundle, signers, (statement, streams) => {
    const k = ociArtifactIndex(statement);
    const image = imageOf(statement, k);
    const bytes = splitCarried(image, streams[k] as Buffer);
    edit(image, bytes, statement);
    streams[k] = joinCarried(image, bytes);
  });
}

/** Puts `bytes` in place of the image's top manifest (a new digest: the image's digest follows it). */
export function replaceTopManifest(image: OciImageField, bytes: Map<string, Buffer>, manifest: Buffer): void {
  const top = image.blobs[0];
  if (!top) throw new Error('no top manifest');
  bytes.delete(top.digest);
  top.digest = digestOf(manifest);
  top.size = manifest.length;
  image.digest = top.digest;
  bytes.set(top.digest, manifest);
}
