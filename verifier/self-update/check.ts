/**
 * `ecluse self-update check FILE.deb`: the root's own check of a package handed over (docs/FORMAT.md 4.10), run by the
 * privileged installer before dpkg. It trusts nothing the daemon wrote but the bytes it re-verifies, and only the
 * root-owned anchors (anchors.ts). In order, the first failure refusing:
 *
 *   1 update-anchors   the pinned root, trust.json and site.json load (none: E_UPDATE naming `self-update pin`)
 *   2 update-file      the file is hashed (SHA-256); named `<sha256>.deb`, the name must be its digest (E_DIGEST)
 *   3 update-evidence  `<sha256>.bundle/` beside it holds only signatures/, certificates/, trust/ within the bounds
 *                      of a bundle folder (E_UPDATE when missing; E_FORMAT, E_UNEXPECTED_FILE)
 *   4 3q, 3r, 3        root documents followed, revocation list verified (a newer one kept in the anchors folder,
 *                      revocations.json; an older or absent one leaves the kept one in force), a threshold of
 *                      trusted, unrevoked signers over one statement: the verifier's own steps (import-steps.ts:
 *                      trustFrom, signaturesOver)
 *   5 statement        the signed statement parses (E_FORMAT)
 *   6 update-site      it is for the pinned site (E_WRONG_SITE)
 *   7 update-artifact  it lists an ecluse-package artifact of this SHA-256 and size (E_DIGEST; none at all: E_UPDATE)
 *   8 update-package   `dpkg-deb -f` of the file says the signed Package, Version and Architecture (E_UPDATE)
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { readBundleFolder } from '../../sneakernet/bundle-files.js';
import { readDebFields } from '../../sneakernet/deb-fields.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { CERTIFICATES_DIR, SIGNATURES_DIR, TRUST_DIR, VOLUMES_DIR } from '../../sneakernet/layout.js';
import { isEclusePackage, parseStatement } from '../../sneakernet/statement.js';
import { signaturesOver, trustFrom } from '../import-steps.js';
import { loadPinnedAnchors, rememberRevocations } from './anchors.js';

export interface CheckedPackage {
  package: { name: string; version: string; arch: string; size: number; sha256: string };
  bundle: { id: string; station: string; sequence: number; site: string; signers: string[] };
  /** Newer roots the evidence proved (followed in memory only). */
  rootVersion: number;
  evidence: string;
  anchors: string;
}

async function sha256Of(file: string): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  try {
    for await (const chunk of fs.createReadStream(file) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
    }
  } catch (e) {
    throw new EcluseError('E_INPUT', `${file} cannot be read: ${(e as Error).message}`, { check: 'update-file' });
  }
  return { sha256: hash.digest('hex'), size };
}

function refuse(check: string, message: string, code: 'E_UPDATE' | 'E_DIGEST' | 'E_WRONG_SITE' = 'E_UPDATE') {
  return new EcluseError(code, message, { check });
}

export async function checkHandedOver(file: string, anchorsDir: string, now = new Date()): Promise<CheckedPackage> {
  const pinned = loadPinnedAnchors(anchorsDir);
  const st = await fs.promises.lstat(file).catch(() => null);
  if (!st?.isFile()) throw new EcluseError('E_INPUT', `${file} is not a regular file`, { check: 'update-file' });
  const { sha256, size } = await sha256Of(file);
  const base = path.basename(file, '.deb');
  if (/^[0-9a-f]{64}$/.test(base) && base !== sha256) {
    throw refuse('update-file', `${file} is not whole: its sha256 is ${sha256}, its name says ${base}`, 'E_DIGEST');
  }
  const evidence = path.join(path.dirname(file), `${sha256}.bundle`);
  const est = await fs.promises.lstat(evidence).catch(() => null);
  if (!est?.isDirectory()) {
    throw refuse(
      'update-evidence',
      `no evidence for ${path.basename(file)}: ${evidence}/ (the bundle's signatures, written by the daemon before the package) is missing`,
    );
  }
  const files = await readBundleFolder(
    {
      root: evidence,
      signatures: path.join(evidence, SIGNATURES_DIR),
      certificates: path.join(evidence, CERTIFICATES_DIR),
      trust: path.join(evidence, TRUST_DIR),
      volumes: path.join(evidence, VOLUMES_DIR),
    },
    `${sha256}.bundle`,
  );
  if (files.volumeFiles.length > 0) {
    throw new EcluseError('E_UNEXPECTED_FILE', `${evidence} holds volumes: evidence carries only signatures`, {
      check: 'update-evidence',
    });
  }
  const trust = trustFrom(pinned.anchors, pinned.revocations, files, now);
  // A newer list, verified against the root: kept at once, whatever becomes of this package (as the station does).
  if (trust.adopted) rememberRevocations(pinned.dir, trust.adopted);
  const signed = signaturesOver(files, trust, pinned.site.threshold, now);
  const statement = parseStatement(signed.payload);
  const p = statement.predicate;
  if (p.site !== pinned.site.site) {
    throw refuse(
      'update-site',
      `the package was signed for site ${p.site}; this station is pinned to site ${pinned.site.site}`,
      'E_WRONG_SITE',
    );
  }
  const packages = p.artifacts.filter(isEclusePackage);
  const a = packages.find((x) => x.sha256 === sha256);
  if (!a) {
    if (packages.length === 0) {
      throw refuse('update-artifact', `the signed statement of bundle ${p.bundleId} carries no ecluse-package`);
    }
    throw refuse(
      'update-artifact',
      `${path.basename(file)} is not the package bundle ${p.bundleId} signed: its sha256 is ${sha256}, the signed one ${packages.map((x) => x.sha256).join(', ')}`,
      'E_DIGEST',
    );
  }
  if (a.size !== size) {
    throw refuse('update-artifact', `${file} is ${size} bytes; the signed package is ${a.size}`, 'E_DIGEST');
  }
  const f = await readDebFields(file, file).catch((e: unknown) => {
    throw refuse('update-package', e instanceof Error ? e.message : String(e));
  });
  const wrong = [
    f.package !== a.name ? `Package ${f.package} (signed: ${a.name})` : null,
    f.version !== a.version ? `Version ${f.version} (signed: ${a.version})` : null,
    f.architecture !== a.package.arch ? `Architecture ${f.architecture} (signed: ${a.package.arch})` : null,
  ].filter((x): x is string => x !== null);
  if (wrong.length > 0) {
    throw refuse('update-package', `${file} does not say what was signed: ${wrong.join(', ')}`);
  }
  return {
    package: { name: a.name, version: a.version, arch: a.package.arch, size, sha256 },
    bundle: { id: p.bundleId, station: p.station, sequence: p.sequence, site: p.site, signers: signed.signers },
    rootVersion: trust.anchors.rootVersion,
    evidence,
    anchors: pinned.dir,
  };
}
