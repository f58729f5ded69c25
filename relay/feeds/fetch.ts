/**
 * `ecluse relay fetch [--feed NAME]`: brings the new releases of each feed into the catalog.
 *
 * checksums feed: read the checksum file and its signature → gpgv against the pinned keys (E_VENDOR_SIGNATURE,
 * E_VENDOR_UNTRUSTED) → for each listed file matching the feed and not yet in the catalog: stream it (resumable),
 * compare with the signed digest (E_VENDOR_DIGEST) → record it with its evidence.
 * sigstore feed: list the mirror → for each matching file with a bundle beside it and not yet in the catalog: stream
 * it, verify the bundle with the pinned keys and the file's digest → record it with its evidence.
 * glance feed: list the outside Glance → for each selected active image not yet in the catalog: check its signature
 * properties against the pinned certificates, stream it (resumable) while checking size, os_hash, md5 and the
 * signature → record it with its evidence (glance-fetch.ts).
 *
 * Evidence (docs/FORMAT.md 4.5) is kept in the catalog and as files beside the blob
 * (`<home>/evidence/<sha256>/`): the checksum file, the signature or bundle, and `evidence.json`.
 * A failed vendor check refuses the release (its partial download is removed); other releases and feeds go on, and
 * the command then fails with the first refusal's code.
 */
import fs from 'node:fs';
import picomatch from 'picomatch';
import { asEcluseError, EcluseError } from '../../sneakernet/errors.js';
import { EVIDENCE_CHECKSUMS_BYTES, EVIDENCE_SIGNATURE_BYTES, type VendorEvidence } from '../../sneakernet/evidence.js';
import { parseChecksums, verifyOpenPgp, verifySigstoreBlob } from '../../keys/vendor.js';
import { validate } from '../add.js';
import { artifactNamed } from '../artifacts.js';
import { blobPath, type RelayHome } from '../catalog.js';
import { sniffDiskFormat } from '../disk-format.js';
import { listFeeds, versionOf, type Feed, type MirrorFeedConfig } from './config.js';
import { download, joinSource, listSource, readSmall } from './download.js';
import { evidenceDir, keepRelease, partialPath, type EvidenceFile, type FetchedRelease } from './evidence-files.js';
import type { FetchOptions, FetchResult } from './fetch-result.js';
import { fetchRegistryFeed } from './registry-fetch.js';
import { fetchGlanceFeed } from './glance-fetch.js';

export type { FetchedRelease } from './evidence-files.js';

export type { FeedRefusal, FetchOptions, FetchResult } from './fetch-result.js';

interface Candidate {
  file: string;
  version: string;
  /** checksums feed: the signed digest. */
  expected?: { algorithm: 'sha256' | 'sha512'; digest: string };
  evidence: (sha256: string) => Promise<VendorEvidence>;
  /** Evidence files to keep beside the blob. */
  files: EvidenceFile[];
}

type MirrorFeed = Feed<MirrorFeedConfig>;

/** The candidates of a checksums feed, after its signature verified. */
async function checksumCandidates(feed: MirrorFeed): Promise<Candidate[]> {
  const c = feed.config;
  const sumsName = c.checksums ?? 'SHA256SUMS';
  const sums = await readSmall(joinSource(c.url, sumsName), EVIDENCE_CHECKSUMS_BYTES);
  if (!sums) throw new EcluseError('E_FEED', `feed ${c.name}: ${joinSource(c.url, sumsName)} does not exist`);
  let signature: Buffer | null = null;
  if (c.signature) {
    signature = await readSmall(joinSource(c.url, c.signature), EVIDENCE_SIGNATURE_BYTES);
    if (!signature) {
      throw new EcluseError('E_VENDOR_SIGNATURE', `feed ${c.name}: the signature ${c.signature} is missing`, {
        check: 'vendor-signature',
      });
    }
  }
  const verified = verifyOpenPgp({
    keys: feed.trust.openpgp.map((k) => Buffer.from(k.key, 'base64')),
    data: sums,
    signature,
    what: `feed ${c.name}: ${sumsName}`,
  });
  const pinned = feed.trust.openpgp.map((k) => k.fingerprint);
  if (!pinned.includes(verified.fingerprint)) {
    throw new EcluseError(
      'E_VENDOR_UNTRUSTED',
      `feed ${c.name}: ${sumsName} is signed by ${verified.fingerprint}, not a pinned key`,
      {
        check: 'vendor-key',
      },
    );
  }
  const isMatch = picomatch(c.match, { dot: false });
  const files = [
    { name: sumsName, bytes: sums },
    ...(signature && c.signature ? [{ name: c.signature, bytes: signature }] : []),
  ];
  const out: Candidate[] = [];
  // Only what gpgv says was signed is read (for a clear-signed file: gpgv's output, never the text around it).
  for (const entry of parseChecksums(verified.content.toString('utf8'))) {
    if (!isMatch(entry.file)) continue;
    const version = versionOf(c, entry.file);
    if (!version) continue;
    out.push({
      file: entry.file,
      version,
      expected: { algorithm: entry.algorithm, digest: entry.digest },
      files,
      evidence: () =>
        Promise.resolve({
          kind: 'openpgp-checksums',
          keyFingerprint: verified.fingerprint,
          file: entry.file,
          algorithm: entry.algorithm,
          checksums: sums.toString('base64'),
          signature: signature ? signature.toString('base64') : null,
        }),
    });
  }
  return out;
}

async function sigstoreCandidates(feed: MirrorFeed): Promise<Candidate[]> {
  const c = feed.config;
  const names = await listSource(c.url);
  const present = new Set(names);
  const isMatch = picomatch(c.match, { dot: false });
  const out: Candidate[] = [];
  for (const file of names.sort()) {
    if (file.endsWith(c.bundleSuffix) || !isMatch(file) || !present.has(`${file}${c.bundleSuffix}`)) continue;
    const version = versionOf(c, file);
    if (!version) continue;
    const bundleName = `${file}${c.bundleSuffix}`;
    const cand: Candidate = {
      file,
      version,
      files: [],
      evidence: async () => {
        const bundle = await readSmall(joinSource(c.url, bundleName), EVIDENCE_SIGNATURE_BYTES);
        if (!bundle) throw new EcluseError('E_VENDOR_SIGNATURE', `feed ${c.name}: ${bundleName} is missing`);
        cand.files.push({ name: bundleName, bytes: bundle });
        return { kind: 'sigstore', keyId: '0'.repeat(64), bundle: bundle.toString('base64') };
      },
    };
    out.push(cand);
  }
  return out;
}

async function fetchRelease(
  home: RelayHome,
  feed: MirrorFeed,
  cand: Candidate,
  o: FetchOptions,
): Promise<FetchedRelease> {
  const c = feed.config;
  const source = joinSource(c.url, cand.file);
  const partial = partialPath(home, c.name, source);
  o.onFile?.(c.name, cand.file);
  const got = await download(source, partial, o.onProgress, { stallTimeoutMs: o.stallTimeoutMs });
  try {
    if (cand.expected) {
      const actual = cand.expected.algorithm === 'sha256' ? got.sha256 : got.sha512;
      if (actual !== cand.expected.digest) {
        throw new EcluseError(
          'E_VENDOR_DIGEST',
          `feed ${c.name}: ${cand.file} has ${cand.expected.algorithm} ${actual.slice(0, 16)}…, the vendor's signed checksum file says ${cand.expected.digest.slice(0, 16)}…`,
          { check: 'vendor-digest' },
        );
      }
    }
    let evidence = await cand.evidence(got.sha256);
    if (evidence.kind === 'sigstore') {
      const { keyId } = await verifySigstoreBlob({
        bundle: Buffer.from(evidence.bundle, 'base64'),
        keys: feed.trust.sigstore.map((k) => k.pem),
        sha256: got.sha256,
        sha512: got.sha512,
        artifactFile: got.file,
        what: `feed ${c.name}: ${cand.file}`,
      });
      evidence = { ...evidence, keyId };
    }
    const diskFormat = c.diskFormat ?? (await sniffDiskFormat(got.file));
    validate({
      name: c.product,
      version: cand.version,
      diskFormat,
      containerFormat: c.containerFormat,
      properties: c.properties,
    });
    return await keepRelease(home, got, {
      feed: c.name,
      file: cand.file,
      name: c.product,
      version: cand.version,
      diskFormat,
      containerFormat: c.containerFormat,
      properties: c.properties,
      vendor: c.vendor,
      source,
      evidence,
      files: cand.files,
    });
  } catch (e) {
    // Bytes that failed a vendor check are not kept (a resumed download must not build on them).
    await fs.promises.rm(partial, { force: true });
    throw e;
  }
}

export async function fetchFeeds(home: RelayHome, o: FetchOptions = {}): Promise<FetchResult> {
  const feeds = listFeeds(home.db).filter((f) => !o.feed || f.config.name === o.feed);
  if (o.feed && feeds.length === 0) throw new EcluseError('E_NOT_FOUND', `no feed named ${o.feed}`);
  if (feeds.length === 0)
    throw new EcluseError('E_NOT_FOUND', 'no feed is declared (ecluse relay feed add, or relay feeds apply FILE)');
  const result: FetchResult = { fetched: [], present: [], refused: [] };
  for (const feed of feeds) {
    const c = feed.config;
    if (c.kind === 'glance') {
      await fetchGlanceFeed(
        home,
        { ...feed, config: c },
        o,
        result,
        (name, version) => artifactNamed(home.db, name, version) !== undefined,
      );
      continue;
    }
    if (c.kind === 'registry') {
      await fetchRegistryFeed(
        home,
        { ...feed, config: c },
        o,
        result,
        (name, version) => artifactNamed(home.db, name, version) !== undefined,
      );
      continue;
    }
    let candidates: Candidate[];
    try {
      const mirror = { ...feed, config: c };
      candidates = c.kind === 'checksums' ? await checksumCandidates(mirror) : await sigstoreCandidates(mirror);
    } catch (e) {
      const err = asEcluseError(e);
      result.refused.push({ feed: c.name, file: null, code: err.code, message: err.message });
      continue;
    }
    for (const cand of candidates) {
      if (artifactNamed(home.db, c.product, cand.version)) {
        result.present.push({ feed: c.name, name: c.product, version: cand.version });
        continue;
      }
      try {
        result.fetched.push(await fetchRelease(home, { ...feed, config: c }, cand, o));
      } catch (e) {
        const err = asEcluseError(e);
        result.refused.push({ feed: c.name, file: cand.file, code: err.code, message: err.message });
      }
    }
  }
  return result;
}

/** The evidence files kept for a blob (for `relay list`-style tools and tests). */
export { blobPath, evidenceDir };
