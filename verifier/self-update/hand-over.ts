/**
 * The hand-over of a verified écluse package to the privileged installer (docs/FORMAT.md 4.10). The daemon (user
 * ecluse) may create files in the spool `incoming/` (mode 0730 root:ecluse) but not list it: nothing here reads the
 * folder, every name is known. Two steps, so that nothing is handed over for a bundle that is refused:
 *
 *   prepare (before the commit): `.<sha256>.bundle/` (a copy of the bundle's signatures/, certificates/ and trust/:
 *   the files the root's own check re-verifies) and `.<sha256>.deb` (the staged bytes, hashed again while copied),
 *   each file fsynced; dot-files, which the path unit (`*.deb`) does not see.
 *   place (inside the commit, after every check): the evidence renamed to `<sha256>.bundle/` FIRST, then the package
 *   to `<sha256>.deb`, which starts the installer.
 *
 * A failure removes what was written or placed, by name.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError } from '../../sneakernet/errors.js';
import type { BundleFiles } from '../../sneakernet/bundle-files.js';
import {
  CERTIFICATE_SUFFIX,
  CERTIFICATES_DIR,
  SIGNATURES_DIR,
  TRUST_DIR,
  TRUST_FILES,
} from '../../sneakernet/layout.js';
import type { EcluseArtifact } from '../../sneakernet/statement.js';

/** Where the daemon and `ecluse import` hand packages over, unless `--update-spool` says otherwise. */
export const DEFAULT_UPDATE_SPOOL = '/var/lib/ecluse-update/incoming';

/** What `import --json`, the receipt and the audit say of a package handed over. */
export interface HandedOver {
  name: string;
  version: string;
  arch: string;
  size: number;
  sha256: string;
  /** `<spool>/<sha256>.deb` and `<spool>/<sha256>.bundle`. */
  deb: string;
  evidence: string;
}

export interface PreparedHandOver extends HandedOver {
  spool: string;
  evidenceTmp: string;
  debTmp: string;
  /** Renamed into place so far (removed again if the commit fails). */
  placed: string[];
}

function handOverError(what: string, spool: string, e: unknown): EcluseError {
  const why = e instanceof Error ? e.message : String(e);
  return new EcluseError(
    'E_UPDATE',
    `écluse's own package could not be handed over in ${spool}: ${what} failed (${why}); check that the spool exists and that this user may write there (systemd-tmpfiles --create, or --update-spool DIR), then import again`,
    { check: 'update-hand-over' },
    { cause: e },
  );
}

/** The files of the bundle folder that carry the signed statement, as (relative path, bytes). */
export function evidenceFiles(files: BundleFiles): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  for (const s of files.signatures) out.push([path.join(SIGNATURES_DIR, s.name), s.bytes]);
  for (const [keyId, bytes] of files.certificates)
    out.push([path.join(CERTIFICATES_DIR, `${keyId}${CERTIFICATE_SUFFIX}`), bytes]);
  if (files.revocations) out.push([path.join(TRUST_DIR, TRUST_FILES[0]), files.revocations]);
  for (const [name, bytes] of files.rootDocuments) out.push([path.join(TRUST_DIR, name), bytes]);
  return out;
}

/** Best effort: a folder this user may not read (incoming/, 0730) cannot be opened to be fsynced. */
function syncFolder(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function writeSynced(file: string, bytes: Buffer): Promise<void> {
  const fh = await fs.promises.open(file, 'wx', 0o644);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Copies the staged package to `to`, fsynced, checking its SHA-256 again on the way. */
async function copyChecked(from: string, to: string, sha256: string): Promise<void> {
  const hash = createHash('sha256');
  const src = await fs.promises.open(from, 'r');
  const dst = await fs.promises.open(to, 'wx', 0o644);
  try {
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    let at = 0;
    for (;;) {
      const { bytesRead } = await src.read(buf, 0, buf.length, at);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      let done = 0;
      while (done < bytesRead) done += (await dst.write(chunk, done, bytesRead - done, at + done)).bytesWritten;
      at += bytesRead;
    }
    await dst.sync();
  } finally {
    await dst.close();
    await src.close();
  }
  const got = hash.digest('hex');
  if (got !== sha256) {
    throw new EcluseError(
      'E_DIGEST',
      `the staged copy of écluse's package changed before it was handed over (sha256 ${got}, signed ${sha256}); nothing was handed over: import again`,
      { check: 'artifact-digest' },
    );
  }
}

/** Writes the evidence and the package under dot-names in `spool` (nothing the installer sees yet). */
export async function prepareHandOver(
  spool: string,
  files: BundleFiles,
  artifact: EcluseArtifact,
  staged: string,
): Promise<PreparedHandOver> {
  const sha = artifact.sha256;
  const p: PreparedHandOver = {
    name: artifact.name,
    version: artifact.version,
    arch: artifact.package.arch,
    size: artifact.size,
    sha256: sha,
    deb: path.join(spool, `${sha}.deb`),
    evidence: path.join(spool, `${sha}.bundle`),
    spool,
    evidenceTmp: path.join(spool, `.${sha}.bundle`),
    debTmp: path.join(spool, `.${sha}.deb`),
    placed: [],
  };
  try {
    // Left by an earlier attempt that died: ours, and named, so removable without listing the spool.
    await fs.promises.rm(p.evidenceTmp, { recursive: true, force: true });
    await fs.promises.rm(p.debTmp, { force: true });
    await fs.promises.mkdir(p.evidenceTmp, { mode: 0o755 });
    const made = new Set<string>();
    for (const [rel, bytes] of evidenceFiles(files)) {
      const dir = path.join(p.evidenceTmp, path.dirname(rel));
      if (!made.has(dir)) {
        await fs.promises.mkdir(dir, { mode: 0o755 });
        made.add(dir);
      }
      await writeSynced(path.join(p.evidenceTmp, rel), bytes);
    }
    for (const dir of made) syncFolder(dir);
    syncFolder(p.evidenceTmp);
  } catch (e) {
    await abandonHandOver(p);
    throw handOverError(`writing the evidence ${p.evidenceTmp}`, spool, e);
  }
  try {
    await copyChecked(staged, p.debTmp, sha);
  } catch (e) {
    await abandonHandOver(p);
    if (e instanceof EcluseError) throw e;
    throw handOverError(`writing the package ${p.debTmp}`, spool, e);
  }
  return p;
}

/**
 * Inside the commit: the evidence into place, then the package (which starts the installer). Synchronous, as the
 * SQLite transaction it runs in must not yield.
 */
export function placeHandOver(p: PreparedHandOver): HandedOver {
  try {
    // An evidence folder of the same package left from an earlier hand-over is replaced (same signed content).
    fs.rmSync(p.evidence, { recursive: true, force: true });
    fs.renameSync(p.evidenceTmp, p.evidence);
    p.placed.push(p.evidence);
    fs.renameSync(p.debTmp, p.deb);
    p.placed.push(p.deb);
  } catch (e) {
    throw handOverError(`renaming into place in ${p.spool}`, p.spool, e);
  }
  syncFolder(p.spool);
  return {
    name: p.name,
    version: p.version,
    arch: p.arch,
    size: p.size,
    sha256: p.sha256,
    deb: p.deb,
    evidence: p.evidence,
  };
}

/** Removes what `prepareHandOver` wrote and `placeHandOver` placed (the commit failed, or the bundle was refused). */
export async function abandonHandOver(p: PreparedHandOver): Promise<void> {
  for (const f of [...p.placed].reverse()) await fs.promises.rm(f, { recursive: true, force: true });
  await fs.promises.rm(p.debTmp, { force: true });
  await fs.promises.rm(p.evidenceTmp, { recursive: true, force: true });
}
