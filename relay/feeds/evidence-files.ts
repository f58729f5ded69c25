/**
 * Where a fetch keeps its bytes and its evidence: the partial download (`<home>/blobs/.fetch-<id>`, the same for a
 * feed and a source across runs, so an interrupted fetch resumes), and the vendor evidence beside the blob
 * (`<home>/evidence/<sha256>/`: the files as published and `evidence.json`); `keepRelease` records a release every
 * vendor check has passed, whatever the feed kind.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { VendorEvidence } from '../../sneakernet/evidence.js';
import { recordBlob, type BlobRecord } from '../add.js';
import type { RelayHome } from '../catalog.js';
import type { Downloaded } from './download.js';

/** A release brought into the catalog by `relay fetch`. */
export interface FetchedRelease {
  feed: string;
  name: string;
  version: string;
  file: string;
  size: number;
  sha256: string;
  resumedFrom: number;
  evidence: VendorEvidence['kind'];
}

export interface EvidenceFile {
  name: string;
  bytes: Buffer;
}

export function partialPath(home: RelayHome, feed: string, source: string): string {
  const id = createHash('sha256').update(`${feed}\n${source}`).digest('hex').slice(0, 32);
  return path.join(home.blobs, `.fetch-${id}`);
}

/** The evidence files kept for a blob. */
export function evidenceDir(home: RelayHome, sha256: string): string {
  return path.join(home.root, 'evidence', sha256);
}

export async function writeEvidenceFiles(
  home: RelayHome,
  sha256: string,
  files: EvidenceFile[],
  e: VendorEvidence,
): Promise<void> {
  const dir = evidenceDir(home, sha256);
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of files) await fs.promises.writeFile(path.join(dir, path.basename(f.name)), f.bytes);
  await fs.promises.writeFile(path.join(dir, 'evidence.json'), `${JSON.stringify(e, null, 2)}\n`);
}

/**
 * Keeps a downloaded release that passed its vendor checks: the evidence files beside the blob, then the blob and its
 * catalog row (recordBlob). `file` is what the release is called in the fetch summary.
 */
export async function keepRelease(
  home: RelayHome,
  got: Downloaded,
  r: Omit<BlobRecord, 'tmp' | 'size' | 'sha256' | 'sha512' | 'md5' | 'evidence' | 'feed'> & {
    feed: string;
    file: string;
    evidence: VendorEvidence;
    files: EvidenceFile[];
  },
): Promise<FetchedRelease> {
  await writeEvidenceFiles(home, got.sha256, r.files, r.evidence);
  const { artifact } = await recordBlob(home, {
    tmp: got.file,
    size: got.size,
    sha256: got.sha256,
    sha512: got.sha512,
    md5: got.md5,
    name: r.name,
    version: r.version,
    diskFormat: r.diskFormat,
    containerFormat: r.containerFormat,
    properties: r.properties,
    vendor: r.vendor,
    source: r.source,
    evidence: JSON.stringify(r.evidence),
    feed: r.feed,
  });
  return {
    feed: r.feed,
    name: artifact.name,
    version: artifact.version,
    file: r.file,
    size: artifact.size,
    sha256: artifact.sha256,
    resumedFrom: got.resumedFrom,
    evidence: r.evidence.kind,
  };
}
