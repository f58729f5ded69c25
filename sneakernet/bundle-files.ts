/**
 * Finds bundles on a media root and reads a bundle folder's small files (signatures, certificates) within bounds.
 * Nothing here trusts what it reads: it only refuses what is structurally wrong (links, unexpected files, sizes over
 * the limits) and hands bytes to the signature check.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError } from './errors.js';
import {
  BUNDLE_ID_PATTERN,
  bundlePaths,
  bundlesDir,
  CERTIFICATE_SUFFIX,
  CERTIFICATES_DIR,
  KEY_ID_PATTERN,
  SIGNATURE_SUFFIX,
  SIGNATURES_DIR,
  ROOT_DOCUMENT_PATTERN,
  TRUST_DIR,
  TRUST_FILES,
  VOLUMES_DIR,
  type BundlePaths,
} from './layout.js';
import { LIMITS } from './limits.js';
import { openMediaFile } from './media-file.js';
import { checkId } from './check-ids.js';

export interface BundleFiles {
  bundleId: string;
  paths: BundlePaths;
  signatures: Array<{ name: string; bytes: Buffer }>;
  /** Certificates by key id. */
  certificates: Map<string, Buffer>;
  /** Names of the files in `volumes/` (of every medium, when the bundle was gathered from several). */
  volumeFiles: string[];
  /** Where each of `volumeFiles` is: `paths.volumes/<name>`, or on another medium of the set (media-set.ts). */
  volumeAt: Map<string, string>;
  /** The revocation list travelling with the bundle (unverified), or null. */
  revocations: Buffer | null;
  /** Root documents travelling with the bundle (unverified), by file name. */
  rootDocuments: Map<string, Buffer>;
}

async function listDir(dir: string, what: string): Promise<fs.Dirent[]> {
  let handle: fs.Dir;
  try {
    handle = await fs.promises.opendir(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ENOTDIR') throw new EcluseError('E_FORMAT', `${what} is not a folder`, { check: checkId('layout') });
    throw new EcluseError('E_IO', `cannot read ${what}: ${(e as Error).message}`, {}, { cause: e });
  }
  const out: fs.Dirent[] = [];
  for await (const entry of handle) {
    out.push(entry);
    if (out.length > LIMITS.directoryEntries) {
      throw new EcluseError('E_FORMAT', `${what} holds more than ${LIMITS.directoryEntries} entries`, {
        check: checkId('layout'),
      });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Ids of the complete bundles on the media (folders still being written, `.partial-*`, are not bundles). */
export async function findBundles(media: string): Promise<string[]> {
  const st = await fs.promises.stat(media).catch(() => null);
  if (!st?.isDirectory()) {
    throw new EcluseError(
      'E_NOT_FOUND',
      st === null
        ? `${media} does not exist: is the media mounted there? Give the folder where it is mounted`
        : `${media} is not a folder: give the folder where the media is mounted`,
      { check: checkId('media') },
    );
  }
  const entries = await listDir(bundlesDir(media), 'the bundles folder');
  return entries.filter((e) => e.isDirectory() && BUNDLE_ID_PATTERN.test(e.name)).map((e) => e.name);
}

/** For each id, its shortest prefix of at least 8 characters that no other id shares (what --bundle accepts). */
export function uniquePrefixes(ids: readonly string[]): string[] {
  return ids.map((id) => {
    for (let n = 8; n < id.length; n++) {
      const p = id.slice(0, n);
      if (ids.every((other) => other === id || !other.startsWith(p))) return p;
    }
    return id;
  });
}

/** Picks the bundle to work on: the one given (its id or any prefix only it has), or the only one on the media. */
export async function chooseBundle(media: string, wanted?: string): Promise<string> {
  const ids = await findBundles(media);
  if (wanted !== undefined) {
    const found = wanted === '' ? [] : ids.filter((id) => id.startsWith(wanted));
    if (found.length === 0) throw new EcluseError('E_NO_BUNDLE', `bundle ${wanted} is not on ${media}`);
    if (found.length > 1) {
      throw new EcluseError(
        'E_TOO_MANY_BUNDLES',
        `${found.length} bundles on ${media} start with ${wanted}; give more of the id to --bundle (${uniquePrefixes(found).join(', ')})`,
        { check: checkId('bundle-choice'), bundles: found },
      );
    }
    return found[0] as string;
  }
  if (ids.length === 0)
    throw new EcluseError('E_NO_BUNDLE', `no écluse bundle on ${media} (looked in ecluse/bundles/)`);
  if (ids.length > 1) {
    throw new EcluseError(
      'E_TOO_MANY_BUNDLES',
      `${ids.length} bundles on ${media}; choose one with --bundle ID (any unique prefix): ${uniquePrefixes(ids).join(', ')}`,
      { check: checkId('bundle-choice'), bundles: ids },
    );
  }
  return ids[0] as string;
}

async function readSmallFile(file: string, what: string, limit: number): Promise<Buffer> {
  const { fd, size } = await openMediaFile(file, what);
  try {
    if (size > limit)
      throw new EcluseError('E_FORMAT', `${what} is ${size} bytes, over the ${limit} allowed`, {
        check: checkId('layout'),
      });
    const buf = Buffer.alloc(size);
    const { bytesRead } = await fd.read(buf, 0, size, 0);
    if (bytesRead !== size)
      throw new EcluseError('E_FORMAT', `${what} changed while being read`, { check: checkId('layout') });
    return buf;
  } finally {
    await fd.close();
  }
}

function unexpected(bundleId: string, name: string): EcluseError {
  return new EcluseError('E_UNEXPECTED_FILE', `bundle ${bundleId} holds ${name}, which format v1 does not define`, {
    check: checkId('layout'),
    bundleId,
  });
}

export async function readBundleFiles(media: string, bundleId: string): Promise<BundleFiles> {
  return readBundleFolder(bundlePaths(media, bundleId), bundleId);
}

/**
 * The same checks and bounds on a bundle folder found elsewhere than on media (`bundleId` only names it in errors):
 * the evidence folder of a self-update hand-over (docs/FORMAT.md 4.10) holds its signatures, certificates and trust.
 */
export async function readBundleFolder(paths: BundlePaths, bundleId: string): Promise<BundleFiles> {
  const top = await listDir(paths.root, `bundle ${bundleId}`);
  for (const e of top) {
    if (![SIGNATURES_DIR, CERTIFICATES_DIR, VOLUMES_DIR, TRUST_DIR].includes(e.name) || !e.isDirectory()) {
      throw unexpected(bundleId, e.name);
    }
  }
  const signatures: BundleFiles['signatures'] = [];
  for (const e of await listDir(paths.signatures, 'the signatures folder')) {
    const keyId = e.name.slice(0, -SIGNATURE_SUFFIX.length);
    if (!e.name.endsWith(SIGNATURE_SUFFIX) || !KEY_ID_PATTERN.test(keyId)) {
      throw unexpected(bundleId, `${SIGNATURES_DIR}/${e.name}`);
    }
    if (signatures.length >= LIMITS.signatures) {
      throw new EcluseError('E_FORMAT', `more than ${LIMITS.signatures} signatures`, {
        check: checkId('layout'),
        bundleId,
      });
    }
    const bytes = await readSmallFile(
      path.join(paths.signatures, e.name),
      `signature ${e.name}`,
      LIMITS.signatureFileBytes,
    );
    signatures.push({ name: e.name, bytes });
  }
  const certificates = new Map<string, Buffer>();
  for (const e of await listDir(paths.certificates, 'the certificates folder')) {
    const keyId = e.name.slice(0, -CERTIFICATE_SUFFIX.length);
    if (!e.name.endsWith(CERTIFICATE_SUFFIX) || !KEY_ID_PATTERN.test(keyId)) {
      throw unexpected(bundleId, `${CERTIFICATES_DIR}/${e.name}`);
    }
    if (certificates.size >= LIMITS.certificates) {
      throw new EcluseError('E_FORMAT', `more than ${LIMITS.certificates} certificates`, {
        check: checkId('layout'),
        bundleId,
      });
    }
    certificates.set(
      keyId,
      await readSmallFile(path.join(paths.certificates, e.name), `certificate ${e.name}`, LIMITS.certificateFileBytes),
    );
  }
  const volumeFiles = (await listDir(paths.volumes, 'the volumes folder')).map((e) => e.name);
  let revocations: Buffer | null = null;
  const rootDocuments = new Map<string, Buffer>();
  for (const e of await listDir(paths.trust, 'the trust folder')) {
    const file = path.join(paths.trust, e.name);
    if ((TRUST_FILES as readonly string[]).includes(e.name)) {
      revocations = await readSmallFile(file, `trust/${e.name}`, LIMITS.signatureFileBytes);
    } else if (ROOT_DOCUMENT_PATTERN.test(e.name)) {
      if (rootDocuments.size >= LIMITS.certificates) {
        throw new EcluseError('E_FORMAT', `more than ${LIMITS.certificates} root documents`, {
          check: checkId('layout'),
          bundleId,
        });
      }
      rootDocuments.set(e.name, await readSmallFile(file, `trust/${e.name}`, LIMITS.certificateFileBytes * 4));
    } else throw unexpected(bundleId, `${TRUST_DIR}/${e.name}`);
  }
  const volumeAt = new Map(volumeFiles.map((name) => [name, path.join(paths.volumes, name)]));
  return { bundleId, paths, signatures, certificates, volumeFiles, volumeAt, revocations, rootDocuments };
}
