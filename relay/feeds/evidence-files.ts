/**
 * Where a fetch keeps its bytes and its evidence: the partial download (`<home>/blobs/.fetch-<id>`, the same for a
 * feed and a source across runs, so an interrupted fetch resumes), and the vendor evidence beside the blob
 * (`<home>/evidence/<sha256>/`: the files as published and `evidence.json`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { VendorEvidence } from '../../sneakernet/statement.js';
import type { RelayHome } from '../catalog.js';

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
