/**
 * relay/media-plan.ts: the bundle files estimate (docs/FORMAT.md 12) and the way the plan settles the circle between
 * it and the volumes (the statement in every signature file lists the volumes; the volumes get the room the bundle
 * files leave).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  bundleFilesEstimate,
  CERTIFICATE_ALLOWANCE,
  placeOnMedia,
  SIGNATURE_FILE_OVERHEAD,
  TRUST_ALLOWANCE,
} from '../../relay/media-plan.js';
import { MIN_VOLUME_BYTES, planVolumes } from '../../sneakernet/volume-plan.js';

const KiB = 1024;
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

describe('bundleFilesEstimate', () => {
  it('counts the statement in base64 in every signature file, certificates and trust files, each in whole blocks', () => {
    const statementBytes = 300_000; // 4 688 digests of chunk list, say
    const signature = Math.ceil((SIGNATURE_FILE_OVERHEAD + 4 * Math.ceil(statementBytes / 3)) / 4096) * 4096;
    expect(
      bundleFilesEstimate({ signers: 3, statementBytes, certificateBytes: [1900, 1900, 5000], trustFileBytes: [100] }),
    ).toBe(3 * signature + 4096 + 4096 + 8192 + TRUST_ALLOWANCE);
    // Not given: an allowance for each certificate and for the trust files, which are floors.
    expect(bundleFilesEstimate({ signers: 2, statementBytes: 2000 })).toBe(
      2 * 8192 + 2 * CERTIFICATE_ALLOWANCE + TRUST_ALLOWANCE,
    );
    expect(
      bundleFilesEstimate({ signers: 1, statementBytes: 2000, trustFileBytes: [9000, 9000, 9000] }),
    ).toBeGreaterThan(8192 + CERTIFICATE_ALLOWANCE + TRUST_ALLOWANCE);
    expect(bundleFilesEstimate({ signers: 1, statementBytes: 2000, trustFileBytes: [] }, 65536)).toBe(3 * 65536);
  });
});

describe('placeOnMedia', () => {
  it('plans the volumes with bundle files that count those very volumes', async () => {
    const artifacts = Array.from({ length: 40 }, (_, i) => ({
      sha256: i.toString(16).padStart(64, '0'),
      size: 70 * KiB,
    }));
    // A statement that grows by 4 KiB per volume: the estimate made for no volumes leaves room for too many.
    const statementBytes = (volumes: readonly unknown[]) => 1000 + 4 * KiB * volumes.length;
    const p = await placeOnMedia({
      media: [],
      mediaBytes: 1024 * KiB,
      signers: 2,
      artifacts: artifacts.length,
      volumes: (capacity) => planVolumes(artifacts, Math.max(capacity, MIN_VOLUME_BYTES)),
      statementBytes,
      trustFileBytes: [],
    });
    const counted = bundleFilesEstimate({ signers: 2, statementBytes: statementBytes(p.volumes), trustFileBytes: [] });
    expect(p.media[0]?.bundleFiles).toBeGreaterThanOrEqual(counted);
    expect(p.media[0]?.bundleFiles).toBeGreaterThan(
      bundleFilesEstimate({ signers: 2, statementBytes: statementBytes([]), trustFileBytes: [] }),
    );
    for (const m of p.media) expect(m.freeSpaceNeeded).toBeLessThanOrEqual(1024 * KiB);
    for (const v of p.volumes) expect(v.size).toBeLessThanOrEqual(p.capacity);
    expect(p.capacity).toBe(Math.floor((1024 * KiB - (p.media[0]?.bundleFiles ?? 0) - 16 * 4096 - 4096) / 512) * 512);
  });

  it('says how large a medium must be when the bundle files leave too little for a volume', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-place-'));
    dirs.push(dir);
    const o = {
      media: [dir],
      mediaBytes: 512 * KiB,
      signers: 3,
      artifacts: 1,
      volumes: () => [],
      statementBytes: () => 200 * KiB,
    };
    await expect(placeOnMedia(o)).rejects.toMatchObject({ code: 'E_USAGE' });
    await expect(placeOnMedia(o)).rejects.toThrow(/bundle files \(\d+\)/);
  });
});
