/**
 * relay/artifact-check.ts: which artifacts are hashed in the volume-writing pass and which from their blob first (a
 * delta, pieces out of order), and the blob pass refusing a changed byte (E_DIGEST naming the artifact). Real files,
 * real hashing threads (the compiled hash worker, built by `npm run build`).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ArtifactCheck, streamable } from '../../relay/artifact-check.js';
import { EcluseError } from '../../sneakernet/errors.js';
import type { Artifact } from '../../sneakernet/statement.js';
import type { PlannedVolume } from '../../sneakernet/volume-plan.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-artifact-check-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const hex = (alg: string, b: Buffer) => createHash(alg).update(b).digest('hex');

function artifact(name: string, bytes: Buffer, delta = false): Artifact {
  return {
    name,
    version: '1',
    type: 'vm-image',
    size: bytes.length,
    sha256: hex('sha256', bytes),
    sha512: hex('sha512', bytes),
    md5: hex('md5', bytes),
    diskFormat: 'raw',
    containerFormat: 'bare',
    properties: {},
    provenance: { vendor: null, source: name, addedAt: '2026-01-01T00:00:00Z' },
    ...(delta
      ? {
          delta: {
            base: { name: 'base', version: '0', size: bytes.length, sha256: 'a'.repeat(64) },
            ops: [
              { from: 'base' as const, offset: 0, size: bytes.length / 2 },
              { from: 'bundle' as const, size: bytes.length / 2 },
            ],
          },
        }
      : {}),
  };
}

const volume = (name: string, entries: Array<[number, number, number]>): PlannedVolume => ({
  name,
  size: 0,
  entries: entries.map(([a, offset, size]) => ({ path: `p${a}-${offset}`, artifact: a, offset, size })),
});

describe('streamable', () => {
  const a = artifact('a', Buffer.alloc(100));
  const b = artifact('b', Buffer.alloc(50));
  it('an artifact in consecutive pieces from 0 to its size, across volumes, is hashed while written', () => {
    const vols = [
      volume('vol-0001.tar', [[0, 0, 60]]),
      volume('vol-0002.tar', [
        [0, 60, 40],
        [1, 0, 50],
      ]),
    ];
    expect([...streamable([a, b], vols)].sort()).toEqual([0, 1]);
  });
  it('pieces out of order, interleaved, or short are hashed from the blob', () => {
    expect([
      ...streamable(
        [a, b],
        [
          volume('v', [
            [0, 60, 40],
            [0, 0, 60],
            [1, 0, 50],
          ]),
        ],
      ),
    ]).toEqual([1]);
    expect([
      ...streamable(
        [a, b],
        [
          volume('v', [
            [0, 0, 60],
            [1, 0, 50],
            [0, 60, 40],
          ]),
        ],
      ),
    ]).toEqual([1]);
    expect([
      ...streamable(
        [a, b],
        [
          volume('v', [
            [0, 0, 60],
            [1, 0, 50],
          ]),
        ],
      ),
    ]).toEqual([1]);
  });
  it('a delta (only some of its bytes travel) is hashed from the blob', () => {
    const d = artifact('d', Buffer.alloc(100), true);
    expect([
      ...streamable(
        [d, b],
        [
          volume('v', [
            [0, 0, 50],
            [1, 0, 50],
          ]),
        ],
      ),
    ]).toEqual([1]);
  });
});

describe('ArtifactCheck.beforeWriting (a delta hashed from its blob)', () => {
  const bytes = randomBytes(3 * 1024 * 1024 + 17);
  const blob = path.join(dir, 'blob');
  const d = artifact('d', bytes.subarray(0, bytes.length - 1), true);
  const plan = [volume('v', [[0, 0, d.size / 2]])];

  it('passes on the bytes the catalog recorded', async () => {
    fs.writeFileSync(blob, bytes.subarray(0, d.size));
    const check = new ArtifactCheck([d], [blob], plan, { allDigests: true });
    try {
      await expect(check.beforeWriting()).resolves.toBeUndefined();
    } finally {
      await check.close();
    }
  });

  it('refuses a flipped byte in a part that does not travel: E_DIGEST naming the artifact and relay remove', async () => {
    const changed = Buffer.from(bytes.subarray(0, d.size));
    changed[10] = (changed[10] as number) ^ 1;
    fs.writeFileSync(blob, changed);
    const check = new ArtifactCheck([d], [blob], plan);
    try {
      const e = await check.beforeWriting().then(
        () => null,
        (err: unknown) => err,
      );
      expect(e).toBeInstanceOf(EcluseError);
      expect(e).toMatchObject({
        code: 'E_DIGEST',
        context: { check: 'stored-artifact', artifact: 'd@1', algorithm: 'sha256' },
      });
      expect((e as EcluseError).message).toMatch(/ecluse relay remove d@1\)/);
    } finally {
      await check.close();
    }
  });
});
