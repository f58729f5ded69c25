/**
 * Fetching an image into the private `dir:` folder. From a registry with platforms asked for, only those are
 * downloaded: the index alone first (`--multi-arch index-only`), then each chosen platform's manifest by digest,
 * merged into the one folder as skopeo lays out a multi-platform copy (`<hex>.manifest.json` beside the blobs).
 * Otherwise (all platforms, or an OCI layout or archive on disk) skopeo copies everything in one go.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LIMITS } from '../../sneakernet/limits.js';
import { isIndexMediaType } from '../../sneakernet/oci/media-types.js';
import { platformMatches, type Platform } from '../../sneakernet/oci/platform.js';
import type { ImageReference } from './reference.js';
import { copyToDir, runSkopeo, sourceOptions, type SkopeoOptions } from './skopeo.js';

interface IndexShape {
  mediaType?: unknown;
  manifests?: Array<{ digest?: unknown; platform?: { os: string; architecture: string; variant?: string } }>;
}

export async function fetchImage(
  source: string,
  ref: ImageReference,
  dir: string,
  platforms: Platform[],
  o: SkopeoOptions,
): Promise<void> {
  if (ref.transport !== 'docker' || platforms.length === 0) {
    await copyToDir(source, ref, dir, o);
    return;
  }
  await copyToDir(source, ref, dir, o, 'index-only');
  const top = path.join(dir, 'manifest.json');
  const st = fs.statSync(top, { throwIfNoEntry: false });
  if (!st?.isFile() || st.size > LIMITS.imageManifestBytes) return; // refused, with its reason, when it is read
  let index: IndexShape;
  try {
    index = JSON.parse(fs.readFileSync(top, 'utf8')) as IndexShape;
  } catch {
    return;
  }
  const isIndex =
    typeof index.mediaType === 'string' ? isIndexMediaType(index.mediaType) : Array.isArray(index.manifests);
  if (!isIndex || !Array.isArray(index.manifests)) return; // a single manifest: index-only copied all of it
  const chosen = index.manifests
    .slice(0, LIMITS.imageIndexEntries)
    .filter((m) => typeof m.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(m.digest))
    .filter((m) => platforms.some((p) => platformMatches(p, m.platform)));
  for (const [i, m] of chosen.entries()) {
    const digest = m.digest as string;
    const hex = digest.slice('sha256:'.length);
    if (fs.existsSync(path.join(dir, `${hex}.manifest.json`))) continue;
    const sub = path.join(dir, `.platform-${i}`);
    await runSkopeo(
      [
        'copy',
        '--quiet',
        '--retry-times',
        '3',
        '--preserve-digests',
        '--remove-signatures',
        ...sourceOptions(ref, o),
        `docker://${ref.registry}/${ref.repository}@${digest}`,
        `dir:${sub}`,
      ],
      `fetching ${source} (manifest ${digest.slice(0, 19)})`,
      o,
    );
    for (const name of fs.readdirSync(sub)) {
      const from = path.join(sub, name);
      if (name === 'manifest.json') fs.renameSync(from, path.join(dir, `${hex}.manifest.json`));
      else if (/^[0-9a-f]{64}$/.test(name) && !fs.existsSync(path.join(dir, name)))
        fs.renameSync(from, path.join(dir, name));
    }
    fs.rmSync(sub, { recursive: true, force: true });
  }
}
