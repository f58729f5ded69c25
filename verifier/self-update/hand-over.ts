/**
 * The hand-over of a verified écluse package to the privileged installer (docs/FORMAT.md 4.10). The daemon (user
 * ecluse) may create files in the spool `incoming/` (mode 0730 root:ecluse) but not list it: nothing here reads the
 * folder, every name is known. Three steps, so that the installer never sees a package for a bundle the site did not
 * record as accepted, and a package accepted is never silently lost:
 *
 *   prepare (before the commit): `.<sha256>.bundle/` (a copy of the bundle's signatures/, certificates/ and trust/:
 *   the files the root's own check re-verifies) and `.<sha256>.deb` (the staged bytes, hashed again while copied),
 *   each file fsynced; dot-files, which the path unit (`*.deb`) does not see.
 *   record (inside the commit that accepts the bundle): the `handed_over_packages` row, state `pending`, and the
 *   audit event `update.handed-over` (record.ts). Nothing is renamed inside the transaction: a commit that fails
 *   (disk full, I/O error) leaves only dot-files, which are removed.
 *   place (after the commit, placing.ts): the evidence renamed to `<sha256>.bundle/` FIRST, then the package to
 *   `<sha256>.deb`, which starts the installer, and the row marked `placed`, under the write lock. If placing fails,
 *   the bundle stays accepted, the failure is audited (`update.hand-over-failed`), the dot-files are kept, and the
 *   placing is tried again at the daemon's next start and at the next import (`placePendingHandOvers`).
 *
 * A failure before the commit removes what was written, by name.
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

/** The four names of one hand-over in the spool: the dot-files written before the commit, and where they go. */
export interface SpoolNames {
  spool: string;
  deb: string;
  evidence: string;
  debTmp: string;
  evidenceTmp: string;
}

export function spoolNames(spool: string, sha256: string): SpoolNames {
  return {
    spool,
    deb: path.join(spool, `${sha256}.deb`),
    evidence: path.join(spool, `${sha256}.bundle`),
    debTmp: path.join(spool, `.${sha256}.deb`),
    evidenceTmp: path.join(spool, `.${sha256}.bundle`),
  };
}

export interface PreparedHandOver extends HandedOver, SpoolNames {}

/** What `import --json`, the receipt and the audit say of `p` (without the dot-file names). */
export function handedOverOf(p: PreparedHandOver): HandedOver {
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
    ...spoolNames(spool, sha),
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

/** Whether `file` exists (a stat by name: the spool may be searched, not listed). */
function present(file: string): boolean {
  try {
    fs.lstatSync(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** What `placeFiles` found: placed now, found placed already, or not placeable (its dot-files are gone). */
export type Placing = { kind: 'placed' } | { kind: 'already' } | { kind: 'lost'; why: string };

/**
 * After the commit: the evidence into place, then the package (which starts the installer). Synchronous, so that it
 * runs under the write lock of the transaction that marks the row placed. Also finishes a placing cut short (the
 * evidence placed, the package not). `installerHasIt`: the installer reported an outcome for this package, so names
 * gone from the spool were taken by it, not lost. Throws (E_UPDATE, naming the spool) when a rename fails.
 */
export function placeFiles(n: SpoolNames, installerHasIt: boolean): Placing {
  try {
    if (present(n.debTmp)) {
      if (present(n.evidenceTmp)) {
        // An evidence folder of the same package left from an earlier hand-over is replaced (same signed content).
        fs.rmSync(n.evidence, { recursive: true, force: true });
        fs.renameSync(n.evidenceTmp, n.evidence);
      } else if (!present(n.evidence)) {
        // The installer refuses a package without its evidence: nothing to hand over.
        fs.rmSync(n.debTmp, { force: true });
        return { kind: 'lost', why: `its evidence ${n.evidenceTmp} is gone` };
      }
      fs.renameSync(n.debTmp, n.deb);
      syncFolder(n.spool);
      return { kind: 'placed' };
    }
    if (present(n.deb) || installerHasIt) {
      fs.rmSync(n.evidenceTmp, { recursive: true, force: true });
      return { kind: 'already' };
    }
    fs.rmSync(n.evidenceTmp, { recursive: true, force: true });
    return { kind: 'lost', why: `${n.debTmp} is gone` };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new EcluseError(
      'E_UPDATE',
      `renaming into place in ${n.spool} failed (${why})`,
      { check: 'update-hand-over' },
      { cause: e },
    );
  }
}

/** Removes what `prepareHandOver` wrote (the commit failed, or the bundle was refused): only dot-files, by name. */
export async function abandonHandOver(p: SpoolNames): Promise<void> {
  await fs.promises.rm(p.debTmp, { force: true });
  await fs.promises.rm(p.evidenceTmp, { recursive: true, force: true });
}
