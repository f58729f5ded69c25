/**
 * The export station's side of OCI images through the CLI (issue 18): `relay add-image` from an OCI layout built from
 * real bytes (skopeo reads it), then `export --plan --json` and `export`: the statement's oci-image artifacts, their
 * carried streams in the volumes (each blob checked against its digest), a blob shared by two images travelling once,
 * and the blobs the site's newest receipt holds left out, with the bytes carried and left out reported per image.
 * A VM image in the same bundle travels exactly as before. (The import side and the registry are oci-import's and
 * oci-proof's.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import tar from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inventoryLines, RECEIPT_TYPE, type Receipt } from '../../sneakernet/receipt.js';
import { parseStatement, type OciImageArtifact, type Statement } from '../../sneakernet/statement.js';
import { buildImage, layer, writeLayout, type TestImage } from '../sneakernet/oci/image-fixtures.js';
import { bundleOn, ecluse, ecluseOk, world, type World } from '../helpers/world.js';

let w: World;
const base = layer();
const v1 = buildImage({ platforms: ['linux/amd64', 'linux/arm64'], baseLayers: [base] });
const v2 = buildImage({ platforms: ['linux/amd64', 'linux/arm64'], baseLayers: [base] });
const v3 = buildImage({ platforms: ['linux/amd64', 'linux/arm64'], baseLayers: [base] });
const baseDigest = `sha256:${createHash('sha256').update(base).digest('hex')}`;

interface PlanImage {
  repository: string;
  tag: string;
  digest: string;
  blobs: number;
  blobsCarried: number;
  bytesCarried: number;
  blobsHeldBySite: number;
  bytesHeldBySite: number;
  blobsCarriedEarlier: number;
}
interface PlanArtifact {
  name: string;
  version: string;
  type: string;
  size: number;
  image?: PlanImage;
}

function statementOn(media: string): Statement {
  const b = bundleOn(media);
  const sig = fs.readdirSync(b.signaturesDir)[0] ?? '';
  const env = JSON.parse(fs.readFileSync(path.join(b.signaturesDir, sig), 'utf8')) as {
    dsseEnvelope: { payload: string };
  };
  return parseStatement(Buffer.from(env.dsseEnvelope.payload, 'base64'));
}

/** Every tar entry of every volume of the bundle on `media`, by path. */
async function entriesOn(media: string): Promise<Map<string, Buffer>> {
  const b = bundleOn(media);
  const out = new Map<string, Buffer>();
  for (const v of b.volumes) {
    const extract = tar.extract();
    const done = new Promise<void>((resolve, reject) => {
      extract.on('entry', (h, stream, next) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: unknown) => chunks.push(c as Buffer));
        stream.on('end', () => {
          out.set(h.name, Buffer.concat(chunks));
          next();
        });
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
    });
    fs.createReadStream(path.join(b.volumesDir, v)).pipe(extract);
    await done;
  }
  return out;
}

/** The carried stream of artifact `k`, split by the signed sizes: digest → bytes. */
async function carriedBlobs(media: string, s: Statement, k: number): Promise<Map<string, Buffer>> {
  const entries = await entriesOn(media);
  const pieces = s.predicate.volumes.flatMap((v) => v.entries).filter((e) => e.artifact === k);
  const stream = Buffer.concat(pieces.map((e) => entries.get(e.path) ?? Buffer.alloc(0)));
  const a = s.predicate.artifacts[k] as OciImageArtifact;
  expect(createHash('sha256').update(stream).digest('hex')).toBe(a.sha256);
  const out = new Map<string, Buffer>();
  let at = 0;
  for (const b of a.image.blobs.filter((x) => x.carried)) {
    const bytes = stream.subarray(at, at + b.size);
    expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, b.digest).toBe(b.digest);
    out.set(b.digest, bytes);
    at += b.size;
  }
  expect(at).toBe(stream.length);
  return out;
}

const addImage = (tag: string, extra: string[] = []) =>
  ecluseOk(
    [
      'relay',
      'add-image',
      `oci:${w.path('layout')}:${tag}`,
      '--name',
      'app',
      '--version',
      tag,
      '--repository',
      'acme/app',
      ...extra,
      '--json',
    ],
    { home: w.outside, timeoutMs: 120_000 },
  );

const sizeOf = (img: TestImage) => [...img.blobs.values()].reduce((n, b) => n + b.length, 0);

beforeAll(async () => {
  w = await world();
  for (const [img, tag] of [
    [v1, '1.0'],
    [v2, '2.0'],
    [v3, '3.0'],
  ] as const)
    await writeLayout(w.path('layout'), img, tag);
}, 120_000);

afterAll(() => w?.cleanup());

describe('OCI images through the export station', () => {
  it('add-image --json says what was added; --help has an example', async () => {
    const r = await addImage('1.0');
    expect(r.json).toMatchObject({
      ok: true,
      created: true,
      artifact: { name: 'app', version: '1.0', type: 'oci-image', size: sizeOf(v1) },
      image: { repository: 'acme/app', tag: '1.0', digest: v1.top.digest, blobs: v1.blobs.size },
      blobsStored: v1.blobs.size,
    });
    const help = await ecluse(['relay', 'add-image', '--help']);
    expect(help.stdout).toContain('Example:');
    expect(help.stdout).toContain('--platform');
  });

  it('one bundle, two images sharing a base layer and a VM image: the layer travels once, the VM image as before', async () => {
    await addImage('2.0');
    const vm = await w.addImage('disk', '1', 3000);
    const plan = await ecluseOk(['export', '--plan', '--site', w.site, '--json'], { home: w.outside });
    const artifacts = (plan.json as { plan: { artifacts: PlanArtifact[] } }).plan.artifacts;
    const [a1, a2, d] = [
      artifacts.find((a) => a.version === '1.0'),
      artifacts.find((a) => a.version === '2.0'),
      artifacts.find((a) => a.name === 'disk'),
    ];
    expect(a1?.image).toMatchObject({
      blobs: v1.blobs.size,
      blobsCarried: v1.blobs.size,
      blobsCarriedEarlier: 0,
      blobsHeldBySite: 0,
      bytesCarried: sizeOf(v1),
    });
    expect(a2?.image).toMatchObject({
      blobs: v2.blobs.size,
      blobsCarried: v2.blobs.size - 1,
      blobsCarriedEarlier: 1,
      blobsHeldBySite: 0,
      bytesCarried: sizeOf(v2) - base.length,
    });
    expect(d).toMatchObject({ type: 'vm-image', size: 3000 });
    expect(d?.image).toBeUndefined();
    // The operator's list says which entries are container images.
    const list = (await ecluseOk(['relay', 'list'], { home: w.outside })).stdout.split('\n');
    expect(list.find((l) => l.startsWith(`${a2?.name ?? ''} 2.0`))).toMatch(/^\S+ 2\.0 {2}container image {2}/);
    expect(list.find((l) => l.startsWith('disk 1'))).not.toMatch(/container image/);

    await w.exportTo(w.path('media-1'));
    const s = statementOn(w.path('media-1'));
    const k1 = s.predicate.artifacts.findIndex((a) => a.version === '1.0');
    const k2 = s.predicate.artifacts.findIndex((a) => a.version === '2.0');
    const i1 = s.predicate.artifacts[k1] as OciImageArtifact;
    const i2 = s.predicate.artifacts[k2] as OciImageArtifact;
    expect(k1).toBeLessThan(k2);
    expect(i1.image).toMatchObject({
      repository: 'acme/app',
      tag: '1.0',
      digest: v1.top.digest,
      mediaType: v1.top.mediaType,
    });
    expect(i2.image.blobs.find((b) => b.digest === baseDigest)?.carried).toBe(false);
    expect((await carriedBlobs(w.path('media-1'), s, k1)).get(v1.top.digest)).toEqual(v1.top.bytes);
    const second = await carriedBlobs(w.path('media-1'), s, k2);
    expect([...second.keys()].sort()).toEqual([...v2.blobs.keys()].filter((d2) => d2 !== baseDigest).sort());
    for (const [digest, bytes] of second) expect(bytes.equals(v2.blobs.get(digest) as Buffer)).toBe(true);
    const vmArtifact = s.predicate.artifacts.find((a) => a.name === 'disk');
    expect(vmArtifact).toMatchObject({
      type: 'vm-image',
      size: 3000,
      sha256: createHash('sha256').update(vm.bytes).digest('hex'),
    });
  }, 120_000);

  it("with the site's receipt: its blobs stay off the media, and the plan and the report say so", async () => {
    // The receipt as `relay receipt import` records it (its verification is tested in test/e2e/receipts.test.ts):
    // the site accepted bundle 1 and its registry holds every blob of 1.0 and 2.0.
    const s = statementOn(w.path('media-1'));
    const held = [...new Set([...v1.blobs.keys(), ...v2.blobs.keys()])].map((d) => d.slice(7)).sort();
    const artifacts = s.predicate.artifacts.map((a) => ({ name: a.name, version: a.version, sha256: a.sha256 }));
    const db = new Database(path.join(w.outside, 'relay.sqlite'));
    try {
      const station = (db.prepare("SELECT value FROM settings WHERE key = 'station'").get() as { value: string }).value;
      const r: Receipt = {
        _type: RECEIPT_TYPE,
        site: w.site,
        number: 1,
        issued: '2026-11-02T00:00:00Z',
        keyId: 'a'.repeat(64),
        stations: [{ station, sequence: 1, bundleId: s.predicate.bundleId, statementSha256: 'b'.repeat(64) }],
        refused: [],
        inventory: {
          sha256: createHash('sha256').update(inventoryLines(artifacts)).digest('hex'),
          artifacts,
          blobs: held,
        },
      };
      db.prepare(
        'INSERT INTO receipts (site, number, issued, acknowledged, payload, taken_at) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(w.site, 1, r.issued, 1, JSON.stringify(r), r.issued);
    } finally {
      db.close();
    }
    await addImage('3.0');
    const plan = await ecluseOk(['export', '--plan', '--site', w.site, '--json'], { home: w.outside });
    const list = (plan.json as { plan: { artifacts: PlanArtifact[] } }).plan.artifacts;
    expect(list.map((a) => `${a.name}@${a.version}`)).toEqual(['app@3.0']);
    expect(list[0]?.image).toMatchObject({
      blobs: v3.blobs.size,
      blobsCarried: v3.blobs.size - 1,
      blobsHeldBySite: 1,
      bytesHeldBySite: base.length,
      bytesCarried: sizeOf(v3) - base.length,
    });
    expect(list[0]?.size).toBe(sizeOf(v3) - base.length);
    const done = await w.exportTo(w.path('media-2'));
    expect((done.json as { artifacts: PlanArtifact[] }).artifacts[0]?.image).toMatchObject({ blobsHeldBySite: 1 });
    const human = await ecluseOk(['export', '--plan', '--site', w.site, '--all'], { home: w.outside });
    expect(human.stdout).toMatch(/OCI image acme\/app:3\.0 linux\/amd64 linux\/arm64, \d+ of \d+ blobs carried/);
    expect(human.stdout).toContain('held by the site');
    const s2 = statementOn(w.path('media-2'));
    const carried = await carriedBlobs(w.path('media-2'), s2, 0);
    expect(carried.has(baseDigest)).toBe(false);
    expect(carried.size).toBe(v3.blobs.size - 1);
  }, 120_000);
});
