/**
 * relay/chunk-listing.ts, the export station's chunk lists (docs/FORMAT.md 4.11): an image written whole is listed in
 * the pass that writes the volumes (across volumes too), a delta (only some bytes travel) from its blob before writing,
 * an empty one not at all; each list is the SHA-256 of every 4 MiB chunk of the image's bytes, as the reader checks
 * it. Real files, the real volume writer, real hashing threads (the compiled worker, built by `npm run build`).
 */
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bothObservers, ChunkListing } from '../../relay/chunk-listing.js';
import { WRITER_CHUNK_SIZE } from '../../sneakernet/chunk-list.js';
import { literalSegments } from '../../sneakernet/delta.js';
import type { Artifact } from '../../sneakernet/statement.js';
import { planVolumes } from '../../sneakernet/volume-plan.js';
import { writeVolume, type EntryObserver } from '../../sneakernet/volume-writer.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-chunk-listing-'));
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

function listOf(bytes: Buffer, size = WRITER_CHUNK_SIZE): string {
  let out = '';
  for (let at = 0; at < bytes.length; at += size) out += hex('sha256', bytes.subarray(at, at + size));
  return out;
}

/** A counting observer: the volume writer's other observer (the catalog check) still sees every byte. */
function counting(): EntryObserver & { bytes_: number } {
  const o = {
    bytes_: 0,
    start: () => Promise.resolve(),
    bytes: (_e: unknown, c: Buffer) => {
      o.bytes_ += c.length;
      return Promise.resolve();
    },
    end: () => Promise.resolve(),
  };
  return o;
}

describe('chunk listing at export (4.11)', () => {
  it('lists whole images in the writing pass across volumes, a delta from its blob, an empty image not at all', async () => {
    const data = [randomBytes(9 * 1024 * 1024 + 77), Buffer.alloc(0), randomBytes(2 * 1024 * 1024)];
    const blobs = data.map((d, i) => {
      const f = path.join(dir, `blob-${i}`);
      fs.writeFileSync(f, d);
      return f;
    });
    const artifacts = [artifact('big', data[0]!), artifact('empty', data[1]!), artifact('delta', data[2]!, true)];
    const volumes = planVolumes(artifacts, 4 * 1024 * 1024);
    expect(volumes.length).toBeGreaterThanOrEqual(3);
    const listing = new ChunkListing(artifacts, blobs, volumes);
    const other = counting();
    try {
      await listing.beforeWriting();
      const sources = artifacts.map((a, i) =>
        a.type === 'vm-image' && a.delta
          ? { file: blobs[i]!, segments: literalSegments(a.delta) }
          : { file: blobs[i]! },
      );
      for (const v of volumes) {
        await writeVolume(v, sources, path.join(dir, v.name), new Date('2026-01-02T00:00:00Z'), {
          observer: bothObservers(other, listing),
        });
      }
    } finally {
      await listing.close();
    }
    const [big, empty, delta] = listing.withChunks(artifacts);
    expect(big?.chunks).toEqual({ size: WRITER_CHUNK_SIZE, sha256: listOf(data[0]!) });
    expect(big?.chunks?.sha256.length).toBe(3 * 64);
    expect(empty).not.toHaveProperty('chunks');
    // The delta's list covers the whole (rebuilt) image, though only its second half travels.
    expect(delta?.chunks).toEqual({ size: WRITER_CHUNK_SIZE, sha256: listOf(data[2]!) });
    expect(other.bytes_).toBe(data[0]!.length + data[2]!.length / 2);
  });
});
