import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HashPool, type ArtifactHasher } from '../../sneakernet/digests.js';
import { encodeStatement, parseStatement, type VolumeEntry } from '../../sneakernet/statement.js';
import { planVolumes } from '../../sneakernet/volume-plan.js';
import { readVolume } from '../../sneakernet/volume-reader.js';
import { writeVolume } from '../../sneakernet/volume-writer.js';
import {
  collectingSink,
  distModule,
  makeArtifact,
  md5,
  randomBytes,
  rmDir,
  runIsolated,
  sha256,
  sha512,
  tmpDir,
  writeBundle,
} from './fixtures.js';

const MiB = 1024 * 1024;

describe('writeVolume + readVolume round trip', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await tmpDir();
  });
  afterAll(() => rmDir(dir));

  async function sub(name: string): Promise<string> {
    const d = path.join(dir, name);
    await fs.promises.mkdir(d);
    return d;
  }

  it('gives back every byte of every artifact, in order, over several volumes', async () => {
    const sizes = [1, 0, 511, 512, 513, 200_003, 65_536, 3];
    const data = sizes.map((s) => randomBytes(s));
    const b = await writeBundle(await sub('multi'), data, 64 * 1024, planVolumes);
    expect(b.volumes.length).toBeGreaterThan(3);

    const seen: VolumeEntry[] = [];
    const perArtifact = data.map((): Buffer[] => []);
    for (const [i, v] of b.volumes.entries()) {
      const { sink, got } = collectingSink();
      let progress = 0;
      await readVolume(b.files[i] as string, v, sink, (n) => (progress += n));
      expect(progress, v.name).toBe(v.size);
      expect(got.map((g) => g.entry)).toEqual(v.entries);
      for (const g of got) {
        expect(g.bytes.length).toBe(g.entry.size);
        seen.push(g.entry);
        perArtifact[g.entry.artifact]?.push(g.bytes);
      }
    }
    expect(seen).toEqual(b.volumes.flatMap((v) => v.entries));
    perArtifact.forEach((chunks, i) =>
      expect(Buffer.concat(chunks).equals(data[i] as Buffer), `artifact ${i}`).toBe(true),
    );
    // The statement built from the written volumes is one parseStatement accepts.
    expect(parseStatement(encodeStatement(b.statement))).toEqual(b.statement);
  });

  it('writes deterministic bytes: same plan and inputs give the same sha256', async () => {
    const data = [randomBytes(70_000), randomBytes(10)];
    const d = await sub('determinism');
    const a = await writeBundle(await sub('determinism/a'), data, 64 * 1024, planVolumes);
    const c = await writeBundle(await sub('determinism/c'), data, 64 * 1024, planVolumes);
    expect(a.volumes.map((v) => v.sha256)).toEqual(c.volumes.map((v) => v.sha256));
    // ...and the sha256 it reports is the one of the file it wrote.
    for (const [i, f] of a.files.entries()) expect(sha256(await fs.promises.readFile(f))).toBe(a.volumes[i]?.sha256);
    expect(fs.existsSync(d)).toBe(true);
  });

  it('reports progress adding up to the volume size', async () => {
    const d = await sub('progress');
    const data = randomBytes(5000);
    const src = path.join(d, 'a.bin');
    await fs.promises.writeFile(src, data);
    const [v] = planVolumes([makeArtifact(0, data)], 64 * 1024);
    if (!v) throw new Error('no plan');
    let progress = 0;
    const w = await writeVolume(v, [{ file: src }], path.join(d, v.name), new Date(0), (n) => (progress += n));
    expect(progress).toBe(v.size);
    expect(w.size).toBe(v.size);
  });

  // Run in a child process: the bug is an uncaught exception, which would take the test runner's worker down with it.
  // The writer loaded is the compiled one (npm run build), like HashPool's worker.
  it('regression (was a bug): a failed volume write (target exists, or media full) crashes the process instead of refusing with E_IO', async () => {
    const d = await sub('write-failure');
    const writer = distModule('sneakernet/volume-writer.js');
    const planner = distModule('sneakernet/volume-plan.js');
    const script = `
      import fs from 'node:fs';
      import { writeVolume } from ${JSON.stringify(writer)};
      import { planVolumes } from ${JSON.stringify(planner)};
      const dir = ${JSON.stringify(d)};
      fs.writeFileSync(dir + '/a.bin', Buffer.alloc(5000, 1));
      const [v] = planVolumes([{ sha256: 'a'.repeat(64), size: 5000 }], 65536);
      fs.writeFileSync(dir + '/' + v.name, 'already here');
      try {
        await writeVolume(v, [{ file: dir + '/a.bin' }], dir + '/' + v.name, new Date(0));
        console.log('RESOLVED');
      } catch (e) {
        console.log('REFUSED ' + e.code);
      }
      await new Promise((r) => setTimeout(r, 300));
      console.log('ALIVE');
    `;
    const r = runIsolated(script);
    expect(r.stdout, `the process crashed; stderr:\n${r.stderr}`).toContain('REFUSED E_IO');
    expect(r.stdout, `the process died after the refusal; stderr:\n${r.stderr}`).toContain('ALIVE');
    expect(r.status).toBe(0);
  });

  it('hashes a multi-MiB artifact spanning volumes through HashPool like node:crypto (sha256, sha512, md5)', async () => {
    // Two artifacts so the pool's workers are reused; the big one spans four volumes of 1 MiB.
    const big = randomBytes(3 * MiB + 12_345);
    const small = randomBytes(777);
    const b = await writeBundle(await sub('hashpool'), [big, small], MiB, planVolumes);
    expect(b.volumes.length).toBeGreaterThanOrEqual(4);
    const pool = new HashPool();
    try {
      const hashers: Array<ArtifactHasher | undefined> = [];
      const results: Array<{ sha256: string; sha512: string; md5: string; bytes: number }> = [];
      const sink = async (entry: VolumeEntry, stream: AsyncIterable<Buffer>) => {
        let h = hashers[entry.artifact];
        if (entry.offset === 0) h = hashers[entry.artifact] = pool.begin();
        if (!h) throw new Error('piece before the first');
        for await (const chunk of stream) await h.update(chunk);
        if (h.bytes === b.artifacts[entry.artifact]?.size)
          results[entry.artifact] = { ...(await h.digest()), bytes: h.bytes };
      };
      for (const [i, v] of b.volumes.entries()) await readVolume(b.files[i] as string, v, sink);
      for (const [i, d] of [big, small].entries()) {
        expect(results[i]).toEqual({ sha256: sha256(d), sha512: sha512(d), md5: md5(d), bytes: d.length });
        expect(results[i]?.sha512).toBe(b.artifacts[i]?.sha512);
      }
      // Pooled digests of an empty stream and of one split oddly also match.
      const empty = pool.begin();
      expect(await empty.digest()).toEqual({ sha256: sha256(''), sha512: sha512(''), md5: md5('') });
      const odd = pool.begin();
      for (let at = 0; at < big.length; at += 333_333) await odd.update(big.subarray(at, at + 333_333));
      expect(await odd.digest()).toEqual({
        sha256: createHash('sha256').update(big).digest('hex'),
        sha512: createHash('sha512').update(big).digest('hex'),
        md5: createHash('md5').update(big).digest('hex'),
      });
    } finally {
      await pool.close();
    }
  });
});
