/**
 * Shared helpers for the on-media format tests: temp folders, random artifacts, hand-built statements, tar volumes
 * built with tar-stream's pack (so a test can make any structure and give it its real sha256), and a sink that
 * collects what readVolume hands out.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import tar from 'tar-stream';
import { assert, expect } from 'vitest';
import { EcluseError, type ErrorCode } from '../../sneakernet/errors.js';
import {
  PREDICATE_TYPE,
  STATEMENT_TYPE,
  subjectName,
  type Artifact,
  type Statement,
  type VmImageArtifact,
  type Volume,
  type VolumeEntry,
} from '../../sneakernet/statement.js';
import type { PlannedVolume } from '../../sneakernet/volume-plan.js';
import { writeVolume } from '../../sneakernet/volume-writer.js';

export const sha256 = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
export const sha512 = (b: Buffer | string): string => createHash('sha512').update(b).digest('hex');
export const md5 = (b: Buffer | string): string => createHash('md5').update(b).digest('hex');

export async function tmpDir(prefix = 'ecluse-fmt-'): Promise<string> {
  return fs.promises.mkdtemp(path.join(os.tmpdir(), prefix));
}

export async function rmDir(dir: string | undefined): Promise<void> {
  if (dir) await fs.promises.rm(dir, { recursive: true, force: true });
}

/** Small deterministic PRNG (mulberry32) so "random" sizes are reproducible from a seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function makeArtifact(i: number, bytes: Buffer, over: Partial<VmImageArtifact> = {}): VmImageArtifact {
  return {
    name: `image-${i}`,
    version: `1.0.${i}`,
    type: 'vm-image',
    size: bytes.length,
    sha256: sha256(bytes),
    sha512: sha512(bytes),
    diskFormat: 'qcow2',
    containerFormat: 'bare',
    properties: { os_distro: 'debian', hw_disk_bus: 'virtio' },
    provenance: { vendor: null, source: `image-${i}.qcow2`, addedAt: '2025-01-01T00:00:00Z' },
    ...over,
  };
}

export function makeStatement(artifacts: Statement['predicate']['artifacts'], volumes: Volume[]): Statement {
  return {
    _type: STATEMENT_TYPE,
    subject: artifacts.map((a) => ({ name: subjectName(a), digest: { sha256: a.sha256, sha512: a.sha512 } })),
    predicateType: PREDICATE_TYPE,
    predicate: {
      formatVersion: 1,
      bundleId: randomUUID(),
      station: 'export-1',
      sequence: 7,
      previous: { bundleId: randomUUID(), sequence: 6, statementSha256: sha256('previous') },
      site: 'site-a',
      created: '2025-01-02T03:04:05Z',
      expires: '2025-02-02T03:04:05Z',
      volumes,
      artifacts,
    },
  };
}

/** A deep copy that tests may mutate freely. */
export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

export interface WrittenBundle {
  dir: string;
  sources: string[];
  data: Buffer[];
  artifacts: Artifact[];
  plan: PlannedVolume[];
  volumes: Volume[];
  files: string[];
  statement: Statement;
}

/** Writes `data` as artifact files, plans volumes for `mediaBytes` and writes them with writeVolume. */
export async function writeBundle(
  dir: string,
  data: Buffer[],
  mediaBytes: number,
  plan: (a: Artifact[], m: number) => PlannedVolume[],
): Promise<WrittenBundle> {
  const sources: string[] = [];
  for (const [i, d] of data.entries()) {
    const f = path.join(dir, `artifact-${i}.bin`);
    await fs.promises.writeFile(f, d);
    sources.push(f);
  }
  const artifacts = data.map((d, i) => makeArtifact(i, d));
  const planned = plan(artifacts, mediaBytes);
  const volumes: Volume[] = [];
  const files: string[] = [];
  const mtime = new Date('2025-01-02T03:04:05Z');
  for (const v of planned) {
    const file = path.join(dir, v.name);
    const written = await writeVolume(
      v,
      sources.map((s) => ({ file: s })),
      file,
      mtime,
    );
    volumes.push({ name: written.name, size: written.size, sha256: written.sha256, entries: v.entries });
    files.push(file);
  }
  return { dir, sources, data, artifacts, plan: planned, volumes, files, statement: makeStatement(artifacts, volumes) };
}

/** A sink that drains each entry and records it, in order. */
export function collectingSink(): {
  sink: (entry: VolumeEntry, data: AsyncIterable<Buffer>) => Promise<void>;
  got: Array<{ entry: VolumeEntry; bytes: Buffer }>;
} {
  const got: Array<{ entry: VolumeEntry; bytes: Buffer }> = [];
  return {
    got,
    sink: async (entry, data) => {
      const chunks: Buffer[] = [];
      for await (const c of data) chunks.push(c);
      got.push({ entry, bytes: Buffer.concat(chunks) });
    },
  };
}

export const drain = async (_e: VolumeEntry, data: AsyncIterable<Buffer>): Promise<void> => {
  for await (const _c of data) {
    // discard
  }
};

/** A tar-stream header, also allowing the raw types tar-stream writes but does not declare. */
export type TarHeader = Omit<Partial<tar.Header>, 'type'> & {
  name: string;
  type?: tar.Header['type'] | 'pax-global-header';
};
export type TarItem = { header: TarHeader; data?: Buffer };

/** Builds a tar archive in memory with tar-stream's pack; `finalize: false` leaves out the end-of-archive blocks. */
export async function packTar(items: TarItem[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve, reject) => {
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const item of items) {
    await new Promise<void>((resolve, reject) => {
      const header = { mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, ...item.header } as Partial<tar.Header> & {
        name: string;
      };
      pack.entry(header, item.data ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}

/** The statement's view of an in-memory volume: its real size and sha256, and the entries it should hold. */
export function volumeFor(bytes: Buffer, entries: VolumeEntry[], name = 'vol-0001.tar'): Volume {
  return { name, size: bytes.length, sha256: sha256(bytes), entries };
}

/** Awaits `p` (or calls `f`) and returns the EcluseError it rejected with; fails the test on anything else. */
export async function refusal(p: Promise<unknown> | (() => unknown)): Promise<EcluseError> {
  let outcome: unknown;
  try {
    if (typeof p === 'function') await p();
    else await p;
  } catch (e) {
    outcome = e;
    if (e instanceof EcluseError) return e;
  }
  assert.fail(
    outcome === undefined
      ? 'expected a refusal, but the call succeeded'
      : `expected an EcluseError, got ${String((outcome as Error)?.constructor?.name)}: ${String((outcome as Error)?.message ?? outcome)}`,
  );
}

export async function expectRefusal(
  p: Promise<unknown> | (() => unknown),
  code: ErrorCode,
  ...inMessage: string[]
): Promise<EcluseError> {
  const e = await refusal(p);
  expect(e.code, `${e.code}: ${e.message}`).toBe(code);
  for (const s of inMessage) expect(e.message).toContain(s);
  return e;
}

/** file: URL of a compiled module under dist/ (npm run build), for scripts run in a child process. */
export function distModule(rel: string): string {
  return new URL(`../../dist/${rel}`, import.meta.url).href;
}

/**
 * Runs an ES module script in a child Node process, for behaviour that would take the test runner's worker down
 * (uncaught exceptions). The script should print what it observed; returns stdout, the head of stderr and the status.
 */
export function runIsolated(script: string): { stdout: string; stderr: string; status: number | null } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  const stderr = r.stderr
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, 6)
    .join('\n');
  return { stdout: r.stdout, stderr, status: r.status };
}

export { randomBytes };
