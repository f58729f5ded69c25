/**
 * The bundle files `--plan` counts on each medium (relay/media-plan.ts `bundleFilesEstimate`, docs/FORMAT.md 12) are
 * an upper bound of the ones `export` writes: every signature file carries the statement, which carries a chunk list
 * per artifact (4.11) and every volume. With hundreds of chunks and three signers the signature files alone outgrow
 * the estimate of before (16 KiB + 10 KiB per signer + 8 KiB per artifact), and an export planned to the last block
 * of a real medium ran out of space. Real parts: a relay home, blobs, three signers from a key ceremony, volumes on a
 * real tmpfs (needs root). The writer's chunk size is brought down to 64 KiB (the format's smallest) so that 48 MiB of
 * artifacts make 768 chunks, as 3 GiB would with the real one.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initKeys } from '../../keys/ceremony.js';
import { loadSigner, type LoadedSigner } from '../../keys/signer.js';
import { parseStatement } from '../../sneakernet/statement.js';
import { addArtifact } from '../../relay/add.js';
import { openRelayHome, type RelayHome } from '../../relay/catalog.js';
import { exportBundle, planExport, type ExportRequest, type WriteOptions } from '../../relay/export.js';

vi.mock('../../sneakernet/chunk-list.js', async (original) => ({
  ...(await original<typeof import('../../sneakernet/chunk-list.js')>()),
  // The format's smallest chunk (CHUNK_SIZE_MIN), whatever the artifact's size.
  writerChunkSize: (size: number) => (size === 0 ? null : 2 ** 16),
}));

const MiB = 1024 * 1024;
const BLOCK = 4096;
const isRoot = process.getuid?.() === 0;

let root: string;
let home: RelayHome;
let signers: LoadedSigner[];
const mounts: string[] = [];

// Trust files travelling with the bundle (writeBundle does not read them: any bytes do).
const revocations = Buffer.from(JSON.stringify({ list: 'x'.repeat(9000) }));
const rootDocuments = [{ name: `root-2.${'a'.repeat(64)}.sigstore.json`, bytes: Buffer.alloc(5000, 0x7b) }];
const written: WriteOptions = { revocations, rootDocuments };

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-media-plan-'));
  const names = ['alice', 'bob', 'carol'];
  await initKeys({ out: path.join(root, 'keys'), signers: names, passphrase: null });
  signers = await Promise.all(
    names.map((n) => loadSigner(path.join(root, 'keys', 'signers', n), () => Promise.resolve(null))),
  );
  home = openRelayHome(path.join(root, 'home'));
  for (let i = 0; i < 4; i++) {
    const file = path.join(root, `image-${i}`);
    fs.writeFileSync(file, randomBytes(12 * MiB));
    await addArtifact(home, {
      file,
      name: `img-${i}`,
      version: '1',
      diskFormat: 'raw',
      containerFormat: 'bare',
      properties: {},
      vendor: null,
    });
  }
});
afterAll(() => {
  home.db.close();
  for (const m of mounts.splice(0)) execFileSync('umount', [m]);
  fs.rmSync(root, { recursive: true, force: true });
});

function request(site: string, media: string[], mediaBytes: number): ExportRequest {
  return {
    mode: { kind: 'fresh' },
    site,
    media,
    mediaBytes,
    signers: signers.length,
    expiresInMs: 86_400_000,
    all: false,
    force: false,
    includeRefused: false,
    noEvidence: false,
    noDelta: false,
    certificateBytes: signers.map((s) => Buffer.byteLength(s.certificatePem)),
    trustFileBytes: [revocations.length, ...rootDocuments.map((d) => d.bytes.length)],
  };
}

/** What the bundle folder holds besides its volumes, each file rounded up to the block, and the statement. */
function bundleFilesOf(folder: string): { bytes: number; chunks: number } {
  let bytes = 0;
  for (const dir of ['signatures', 'certificates', 'trust']) {
    for (const name of fs.readdirSync(path.join(folder, dir))) {
      bytes += Math.ceil(fs.statSync(path.join(folder, dir, name)).size / BLOCK) * BLOCK;
    }
  }
  const sigDir = path.join(folder, 'signatures');
  const sig = JSON.parse(fs.readFileSync(path.join(sigDir, fs.readdirSync(sigDir)[0] as string), 'utf8')) as {
    dsseEnvelope: { payload: string };
  };
  const statement = parseStatement(Buffer.from(sig.dsseEnvelope.payload, 'base64'));
  const chunks = statement.predicate.artifacts.reduce((n, a) => n + (a.chunks ? a.chunks.sha256.length / 64 : 0), 0);
  return { bytes, chunks };
}

describe('the bundle files a plan counts', () => {
  it('bound the signature, certificate and trust files written on every medium (768 chunks, 3 signers)', async () => {
    const media = [path.join(root, 'm1'), path.join(root, 'm2')];
    for (const m of media) fs.mkdirSync(m);
    const req = request('site-a', media, 30 * MiB);
    const { plan } = await planExport(home, req);
    expect(plan.refusal).toBeNull();
    expect(plan.media).toHaveLength(2);
    const r = await exportBundle(home, req, signers, written);
    expect(r.volumes.map((v) => v.name)).toEqual(plan.volumes.map((v) => v.name));
    for (const [k, m] of r.media.entries()) {
      const files = bundleFilesOf(m.path);
      expect(files.chunks).toBe(768);
      expect(files.bytes).toBeLessThanOrEqual(plan.media[k]?.bundleFiles ?? 0);
      // An upper bound, not a guess of any size: the signature files are most of it, and they are counted exactly.
      expect(plan.media[k]?.bundleFiles ?? 0).toBeLessThan(files.bytes + 16 * 1024);
    }
  });

  it.skipIf(!isRoot)('let an export planned to the last block of a real medium (tmpfs) be written', async () => {
    // The volume, then the smallest medium the plan says it fits on.
    const probe = await planExport(home, request('site-b', [], 1024 * MiB));
    const volume = probe.plan.volumes[0]?.size ?? 0;
    expect(probe.plan.volumes).toHaveLength(1);
    const files = probe.plan.media[0]?.bundleFiles ?? 0;
    const margin = probe.plan.media[0]?.margin ?? 0;
    const size = Math.ceil((volume + files + margin + BLOCK) / BLOCK) * BLOCK;
    const stick = path.join(root, 'stick');
    fs.mkdirSync(stick);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', stick]);
    mounts.push(stick);
    const s = fs.statfsSync(stick);
    const free = s.bavail * s.bsize;
    expect(free).toBe(size);
    const req = request('site-b', [stick], free);
    const { plan } = await planExport(home, req);
    expect(plan.refusal).toBeNull();
    expect(plan.volumes).toEqual(probe.plan.volumes);
    // Planned to the last block: what the medium must have free is all it has, give or take a volume's last block.
    expect(free - (plan.media[0]?.freeSpaceNeeded ?? 0)).toBeLessThan(2 * BLOCK);
    const r = await exportBundle(home, req, signers, written);
    expect(r.sequence).toBe(1);
    expect(bundleFilesOf(r.path).chunks).toBe(768);
  });
});
