/**
 * A bundle spread over several media is assembled in the daemon's private folder (`<home>/daemon/assembly/<id>/`,
 * mode 0700), laid out like a medium (`ecluse/bundles/<id>/...`) so that the ordinary import pipeline reads it once
 * every volume is there. Each volume is copied from its stick once, hashed while it is copied, and kept only if its
 * size and SHA-256 match the signed statement (whose signatures were verified before the first byte was copied).
 * A copy interrupted by the stick being pulled is deleted: that volume starts again from its first byte.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { EcluseError } from '../../sneakernet/errors.js';
import { bundlePaths, CERTIFICATE_SUFFIX } from '../../sneakernet/layout.js';
import type { Volume } from '../../sneakernet/statement.js';
import { openMediaFile } from '../../sneakernet/media-file.js';
import type { BundleOnMedium } from '../import.js';
import { daemonDir } from './status.js';
import { removedDuring } from '../media-removal.js';

export interface AssemblyMeta {
  bundle: string;
  station: string;
  sequence: number;
  statementSha256: string;
  volumes: string[];
  startedAt: string;
}

export interface Assembly {
  /** The folder that looks like a medium. */
  root: string;
  meta: AssemblyMeta;
  have: string[];
  missing: string[];
}

const META = 'assembly.json';
const CHUNK = 1024 * 1024;

export function assemblyRoot(home: string): string {
  return path.join(daemonDir(home), 'assembly');
}

function load(dir: string): Assembly | null {
  try {
    const meta = JSON.parse(fs.readFileSync(path.join(dir, META), 'utf8')) as AssemblyMeta;
    const vols = bundlePaths(dir, meta.bundle).volumes;
    const present = new Set(fs.readdirSync(vols));
    return {
      root: dir,
      meta,
      have: meta.volumes.filter((v) => present.has(v)),
      missing: meta.volumes.filter((v) => !present.has(v)),
    };
  } catch {
    return null;
  }
}

export function listAssemblies(home: string): Assembly[] {
  const root = assemblyRoot(home);
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((n) => load(path.join(root, n)))
    .filter((a): a is Assembly => a !== null)
    .sort((a, b) => a.meta.station.localeCompare(b.meta.station) || a.meta.sequence - b.meta.sequence);
}

export function findAssembly(home: string, bundleId: string): Assembly | null {
  return load(path.join(assemblyRoot(home), bundleId));
}

/** Starts assembling a bundle: its signatures and certificates, as read from the first medium seen. */
export function createAssembly(home: string, b: BundleOnMedium): Assembly {
  const dir = path.join(assemblyRoot(home), b.bundle.id);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(assemblyRoot(home), { recursive: true, mode: 0o700 });
  const p = bundlePaths(dir, b.bundle.id);
  for (const d of [dir, p.root, p.signatures, p.certificates, p.volumes])
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
  for (const s of b.files.signatures) fs.writeFileSync(path.join(p.signatures, s.name), s.bytes, { mode: 0o600 });
  for (const [keyId, bytes] of b.files.certificates) {
    fs.writeFileSync(path.join(p.certificates, `${keyId}${CERTIFICATE_SUFFIX}`), bytes, { mode: 0o600 });
  }
  const meta: AssemblyMeta = {
    bundle: b.bundle.id,
    station: b.bundle.station,
    sequence: b.bundle.sequence,
    statementSha256: b.bundle.statementSha256,
    volumes: b.statement.predicate.volumes.map((v) => v.name),
    startedAt: new Date().toISOString(),
  };
  fs.writeFileSync(path.join(dir, META), JSON.stringify(meta, null, 2), { mode: 0o600 });
  return { root: dir, meta, have: [], missing: [...meta.volumes] };
}

export function removeAssembly(a: Assembly): void {
  fs.rmSync(a.root, { recursive: true, force: true });
}

export interface CopyOptions {
  signal: AbortSignal;
  /** Bytes per second at most (tests use it to pull a stick mid-copy); unlimited when absent. */
  rate?: number;
  onProgress?: (bytes: number) => void;
}

/** Copies one volume from the medium into the assembly, hashing it; keeps it only when it matches the statement. */
export async function copyVolume(a: Assembly, mediaVolumesDir: string, v: Volume, o: CopyOptions): Promise<void> {
  const target = path.join(bundlePaths(a.root, a.meta.bundle).volumes, v.name);
  const part = path.join(a.root, `.part-${v.name}`);
  const { fd, size } = await openMediaFile(path.join(mediaVolumesDir, v.name), `volume ${v.name}`);
  let out: fs.promises.FileHandle | null = null;
  try {
    if (size !== v.size) {
      throw new EcluseError('E_SIZE', `volume ${v.name} is ${size} bytes, the statement says ${v.size}`, {
        check: 'volume-size',
        volume: v.name,
      });
    }
    out = await fs.promises.open(part, 'w', 0o600);
    const hash = createHash('sha256');
    const buf = Buffer.alloc(CHUNK);
    let done = 0;
    const started = Date.now();
    while (done < v.size) {
      o.signal.throwIfAborted();
      const { bytesRead } = await fd.read(buf, 0, Math.min(CHUNK, v.size - done), done);
      if (bytesRead === 0) break;
      const chunk = buf.subarray(0, bytesRead);
      hash.update(chunk);
      await out.write(chunk, 0, bytesRead, done);
      done += bytesRead;
      o.onProgress?.(bytesRead);
      if (o.rate) {
        const ahead = (done / o.rate) * 1000 - (Date.now() - started);
        if (ahead > 0) await sleep(ahead);
      }
    }
    o.signal.throwIfAborted();
    if (done !== v.size) {
      throw new EcluseError('E_SIZE', `volume ${v.name} ended after ${done} bytes, the statement says ${v.size}`, {
        check: 'volume-size',
        volume: v.name,
      });
    }
    if (hash.digest('hex') !== v.sha256) {
      throw new EcluseError('E_DIGEST', `volume ${v.name} does not match the sha256 in the signed statement`, {
        check: 'volume-digest',
        volume: v.name,
      });
    }
    await out.sync();
    await out.close();
    out = null;
    await fs.promises.rename(part, target);
  } catch (e) {
    await out?.close().catch(() => undefined);
    await fs.promises.rm(part, { force: true });
    if (await removedDuring(e, o.signal)) {
      const reason: unknown = o.signal.reason;
      throw reason instanceof EcluseError
        ? reason
        : new EcluseError('E_MEDIA_REMOVED', `the media was removed while ${v.name} was being copied`);
    }
    throw e;
  } finally {
    await fd.close().catch(() => undefined);
  }
}

/** `insert volume 2 of 3 of bundle outside-1 #4 (6f1c2a9e)`: what the operator is asked for next. */
export function waitingMessage(a: Assembly): string {
  const n = a.meta.volumes.length;
  const next = a.missing[0];
  const which = next ? a.meta.volumes.indexOf(next) + 1 : n;
  return `insert volume ${which} of ${n} of bundle ${a.meta.station} #${a.meta.sequence} (${a.meta.bundle.slice(0, 8)})`;
}
