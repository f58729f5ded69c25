/**
 * `export --plan` and `export` agree (issue 13): over random catalogs, media sizes, media counts, sites and modes
 * (fresh, resend, replace), the bundle `exportBundle` writes is exactly the one `planExport` described (same site,
 * sequence, predecessor, artifacts, volumes and their sizes, the same volumes on the same media), or the export
 * refuses for the reason the plan gave. Real parts: a real relay home, real blobs, a real signer from a key ceremony,
 * real tar volumes on real folders.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initKeys } from '../../keys/ceremony.js';
import { loadSigner, type LoadedSigner } from '../../keys/signer.js';
import { EcluseError } from '../../sneakernet/errors.js';
import { parseStatement } from '../../sneakernet/statement.js';
import { addArtifact } from '../../relay/add.js';
import { openRelayHome, type RelayHome } from '../../relay/catalog.js';
import { exportBundle, planExport, type ExportPlan, type ExportRequest } from '../../relay/export.js';

let root: string;
let signer: LoadedSigner;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-plan-prop-'));
  await initKeys({ out: path.join(root, 'keys'), signers: ['alice'], passphrase: null });
  signer = await loadSigner(path.join(root, 'keys', 'signers', 'alice'), () => Promise.resolve(null));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

type Op =
  | { kind: 'add'; size: number }
  | { kind: 'fresh' | 'resend' | 'replace'; site: string; n: number; mediaKiB: number; media: number; all: boolean };

const site = fc.constantFrom('site-a', 'site-b');
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('add' as const), size: fc.integer({ min: 1, max: 200_000 }) }),
  fc.record({
    kind: fc.constantFrom('fresh' as const, 'fresh' as const, 'resend' as const, 'replace' as const),
    site,
    n: fc.integer({ min: 1, max: 2 }),
    mediaKiB: fc.integer({ min: 128, max: 1024 }),
    media: fc.constantFrom(1, 1, 2, 3),
    all: fc.boolean(),
  }),
);

/** What the plan and the written bundle must agree on (the identity is new at every plan, by design). */
function shape(p: ExportPlan) {
  return {
    site: p.site,
    sequence: p.sequence,
    previous: p.previous,
    artifacts: p.artifacts.map((a) => a.sha256),
    volumes: p.volumes,
    media: p.media.map((m) => m.volumes),
    replaces: p.replaces,
  };
}

async function run(home: RelayHome, ops: Op[], dir: string): Promise<Record<string, number>> {
  const writes: Record<string, number> = {};
  let added = 0;
  for (const [i, o] of ops.entries()) {
    if (o.kind === 'add') {
      const file = path.join(dir, `in-${i}`);
      fs.writeFileSync(file, randomBytes(o.size));
      await addArtifact(home, {
        file,
        name: `img-${added % 3}`,
        version: `${++added}`,
        diskFormat: 'raw',
        containerFormat: 'bare',
        properties: {},
        vendor: null,
      });
      continue;
    }
    const media = Array.from({ length: o.media }, (_, k) => path.join(dir, `op-${i}-m${k}`));
    for (const m of media) fs.mkdirSync(m);
    let mode: ExportRequest['mode'] = { kind: 'fresh' };
    if (o.kind !== 'fresh') mode = { kind: o.kind, sequence: o.n };
    const request: ExportRequest = {
      mode,
      site: o.site,
      media,
      mediaBytes: o.mediaKiB * 1024,
      signers: 1,
      expiresInMs: 86_400_000,
      all: o.all,
      force: false,
      includeRefused: false,
      noEvidence: false,
      noDelta: false,
    };
    // What `export --plan` prints...
    const planned = await planExport(home, request).then(
      (p) => p.plan,
      (e: unknown) => e,
    );
    // ...and what `export` does.
    const written = await exportBundle(home, request, [signer]).then(
      (r) => r,
      (e: unknown) => e,
    );
    if (!(planned instanceof Object) || planned instanceof Error) {
      // The plan itself refused (usage, unknown bundle): export refuses the same way.
      expect(planned).toBeInstanceOf(EcluseError);
      expect(written).toBeInstanceOf(EcluseError);
      expect((written as EcluseError).code).toBe((planned as EcluseError).code);
      expect((written as EcluseError).message).toBe((planned as EcluseError).message);
      continue;
    }
    const plan = planned as ExportPlan;
    if (plan.refusal) {
      expect(written).toBeInstanceOf(EcluseError);
      expect((written as EcluseError).code).toBe(plan.refusal.code);
      if (plan.refusal.code !== 'E_NO_SPACE') expect((written as EcluseError).message).toBe(plan.refusal.message);
      for (const m of media) expect(fs.readdirSync(m)).toEqual([]);
      continue;
    }
    if (written instanceof Error) throw written;
    writes[plan.mode] = (writes[plan.mode] ?? 0) + 1;
    const r = written as Awaited<ReturnType<typeof exportBundle>>;
    // The statement on the first medium is the plan.
    const sigDir = path.join(r.path, 'signatures');
    const sig = JSON.parse(fs.readFileSync(path.join(sigDir, fs.readdirSync(sigDir)[0] as string), 'utf8')) as {
      dsseEnvelope: { payload: string };
    };
    const statement = parseStatement(Buffer.from(sig.dsseEnvelope.payload, 'base64')).predicate;
    const onMedia = r.media.map((m) => fs.readdirSync(path.join(m.path, 'volumes')).sort());
    expect({
      site: statement.site,
      sequence: statement.sequence,
      previous: statement.previous,
      artifacts: statement.artifacts.map((a) => a.sha256),
      volumes: statement.volumes.map((v) => ({ name: v.name, size: v.size })),
      media: onMedia,
      replaces: r.replaced,
    }).toEqual(shape(plan));
    if (plan.mode === 'resend') expect(statement.bundleId).toBe(plan.bundleId);
    for (const [k, m] of r.media.entries()) {
      const bytes = (m.volumes ?? []).reduce((n, v) => n + fs.statSync(path.join(m.path, 'volumes', v)).size, 0);
      expect(bytes).toBe(plan.media[k]?.bytes);
      expect(bytes).toBeLessThanOrEqual(plan.media[k]?.freeSpaceNeeded ?? 0);
    }
    for (const v of statement.volumes) expect(v.size).toBeLessThanOrEqual(plan.volumeCapacity);
  }
  return writes;
}

describe('export --plan and export agree', () => {
  it('writes exactly what the plan said, or refuses for the reason it gave', async () => {
    const total: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(
        fc.array(op, { minLength: 2, maxLength: 8 }),
        fc.integer({ min: 128, max: 1024 }),
        async (ops, kib) => {
          const dir = fs.mkdtempSync(path.join(root, 'run-'));
          const home = openRelayHome(path.join(dir, 'home'));
          try {
            // Every run starts with each mode once (random media size), then goes on at random.
            const start: Op[] = [
              { kind: 'add', size: 150_000 },
              { kind: 'fresh', site: 'site-a', n: 1, mediaKiB: kib, media: 1, all: false },
              { kind: 'resend', site: 'site-a', n: 1, mediaKiB: kib, media: 1, all: false },
              { kind: 'replace', site: 'site-a', n: 1, mediaKiB: kib, media: 1, all: false },
            ];
            const w = await run(home, [...start, ...ops], dir);
            for (const [k, n] of Object.entries(w)) total[k] = (total[k] ?? 0) + n;
          } finally {
            home.db.close();
            fs.rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 15 },
    );
    // The property was exercised on real writes of every mode, not only on refusals.
    expect(total.fresh ?? 0).toBeGreaterThan(5);
    expect(total.resend ?? 0).toBeGreaterThan(0);
    expect(total.replace ?? 0).toBeGreaterThan(0);
  }, 480_000);
});
