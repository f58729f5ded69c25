/**
 * A gap names, but does not freeze (issue 12; docs/FORMAT.md section 6, steps 5b–5e), through the real CLI: a
 * corrupted bundle 2 is refused with the exact resend command, bundle 3 is accepted above the gap (named in the audit
 * log, `status --json` and the receipt), a forged bundle 2 (validly signed, another digest) is refused `E_CHAIN`, the
 * genuine bundle 2 resent with `export --resend 2` is accepted late, and then any bundle 2 is `E_REPLAY`. With
 * `order: strict` in the site policy, bundle 3 is refused `E_SEQUENCE_GAP` instead. An artifact the site already holds
 * with the same version and digest is "already here". After every refusal the store, the catalog and the accepted state
 * are unchanged (expectImportRefused).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSigner } from '../../keys/signer.js';
import { editAndResign } from '../helpers/hostile.js';
import { overview } from '../../verifier/web/pages/overview.js';
import {
  auditSince,
  bundleOn,
  copyMedia,
  ecluseOk,
  expectImportRefused,
  flipByte,
  makeKeys,
  mediaDir,
  PASSPHRASE,
  snapshot,
  tmpDir,
  world,
  type Keys,
  type World,
} from '../helpers/world.js';

const KiB = 1024;
/** Each journey runs a dozen CLI commands; on a loaded machine that takes minutes. */
const JOURNEY_MS = 360_000;
const BLOCK = 512;

interface ImportJson {
  ok: boolean;
  bundle: { sequence: number; station: string };
  chain: { position: string; missing?: number[]; successor?: number };
  images: Array<{ name: string; version: string }>;
  alreadyHere: Array<{ name: string; version: string; sha256: string }>;
}

let keysDir: string;
let keys: Keys;
const worlds: World[] = [];

beforeAll(async () => {
  keysDir = tmpDir('ecluse-e2e-keys-');
  keys = await makeKeys(keysDir);
});
afterAll(() => {
  for (const w of worlds) w.cleanup();
  fs.rmSync(keysDir, { recursive: true, force: true });
});

async function fresh(): Promise<World> {
  const w = await world({ keys });
  worlds.push(w);
  return w;
}

/** Bundles 1, 2, 3 of one station, each carrying its own image; bundle 2's first volume damaged on `m2`. */
async function threeBundles(w: World): Promise<{ station: string }> {
  for (const n of [1, 2, 3]) {
    await w.addImage(`img-${n}`, '1.0', 64 * KiB);
    await w.exportTo(w.path(`m${n}`));
  }
  copyMedia(w.path('m2'), w.path('m2-pristine'));
  flipByte(bundleOn(w.path('m2')).volume(1), BLOCK + 100);
  const first = await w.importJson(w.path('m1'));
  expect(first.code, first.stderr).toBe(0);
  return { station: (first.json as ImportJson).bundle.station };
}

async function applyPolicy(w: World, yaml: string): Promise<void> {
  fs.writeFileSync(w.path('policy.yaml'), yaml);
  await ecluseOk(['policy', 'apply', w.path('policy.yaml'), '--json'], { home: w.inside });
}

function receiptPayload(dir: string): {
  gaps: Array<{ station: string; sequence: number; refusedWith: string | null }>;
  refused: Array<{ code: string; sequence?: number | null; station: string | null }>;
  stations: Array<{ station: string; sequence: number }>;
} {
  const folder = path.join(dir, 'ecluse', 'receipts');
  const [name] = fs.readdirSync(folder);
  const signed = JSON.parse(fs.readFileSync(path.join(folder, name as string), 'utf8')) as {
    dsseEnvelope: { payload: string };
  };
  return JSON.parse(Buffer.from(signed.dsseEnvelope.payload, 'base64').toString('utf8')) as ReturnType<
    typeof receiptPayload
  >;
}

describe('order: tolerant (the default)', () => {
  it(
    'a corrupted bundle 2, then 3 accepted above the gap, a forged 2 refused, 2 resent accepted late',
    async () => {
      const w = await fresh();
      const { station } = await threeBundles(w);

      // Bundle 2 damaged on the way: refused, with the exact command that brings it again.
      const damaged = await expectImportRefused(w, w.path('m2'), 'E_DIGEST');
      expect((damaged.json as { message: string }).message).toMatch(
        new RegExp(`; export it again outside: ecluse export --resend 2 --site ${w.site} --to MEDIA$`),
      );
      expect(damaged.stderr.trimEnd().split('\n').pop()).toMatch(
        new RegExp(`^E_DIGEST: .*; export it again outside: ecluse export --resend 2 --site ${w.site} --to MEDIA$`),
      );

      // Bundle 3 is accepted: the gap is named, it does not block.
      const third = await w.importJson(w.path('m3'));
      expect(third.code, third.stderr).toBe(0);
      expect(third.json).toMatchObject({
        ok: true,
        bundle: { sequence: 3 },
        chain: { position: 'ahead', missing: [2] },
        images: [{ name: 'img-3', version: '1.0' }],
      });
      const gapEvent = auditSince(w.inside).filter((a) => a.kind === 'bundle.gap');
      expect(gapEvent).toHaveLength(1);
      expect(gapEvent[0]?.message).toContain('#2 (refused here: E_DIGEST) not imported');
      const status = await ecluseOk(['status', '--json'], { home: w.inside });
      expect((status.json as { gaps: unknown }).gaps).toEqual([{ station, sequence: 2, refusedWith: 'E_DIGEST' }]);
      // The web view's first page names it too, with the command that brings it.
      const db = new Database(path.join(w.inside, 'ecluse.sqlite'), { readonly: true });
      try {
        expect(overview(db, null).toString().replace(/\s+/g, ' ')).toContain(
          `bundle #2 of ${station} is missing (refused here: E_DIGEST): <code>ecluse export --resend 2 --site ${w.site} --to MEDIA</code>`,
        );
      } finally {
        db.close();
      }
      await ecluseOk(['receipt', 'export', '--to', w.path('r1'), '--json'], { home: w.inside });
      const receipt = receiptPayload(w.path('r1'));
      expect(receipt.gaps).toEqual([{ station, sequence: 2, refusedWith: 'E_DIGEST' }]);
      expect(receipt.stations).toEqual([expect.objectContaining({ station, sequence: 3 })]);
      expect(receipt.refused).toEqual([expect.objectContaining({ code: 'E_DIGEST', station, sequence: 2 })]);

      // A forged bundle 2: validly signed by a trusted signer, but not the statement bundle 3 chained to.
      copyMedia(w.path('m2-pristine'), w.path('m2-forged'));
      const alice = await loadSigner(keys.signer('alice'), () => Promise.resolve(PASSPHRASE));
      await editAndResign(bundleOn(w.path('m2-forged')), [alice], (s) => {
        (s.predicate as { expires: string }).expires = '2099-01-01T00:00:00Z';
      });
      const forged = await expectImportRefused(w, w.path('m2-forged'), 'E_CHAIN');
      expect((forged.json as { message: string }).message).toMatch(
        /^bundle 2 \(\S+\) from station \S+ is not the bundle 2 that the accepted bundle 3 names as its predecessor \(\S+\)$/,
      );

      // The genuine bundle 2, written again outside with --resend: accepted late, the gap closes.
      await w.exportTo(w.path('m2-resent'), ['--resend', '2']);
      const late = await w.importJson(w.path('m2-resent'));
      expect(late.code, late.stderr).toBe(0);
      expect(late.json).toMatchObject({
        ok: true,
        bundle: { sequence: 2 },
        chain: { position: 'late', successor: 3 },
        images: [{ name: 'img-2', version: '1.0' }],
      });
      expect(auditSince(w.inside).filter((a) => a.kind === 'bundle.gap-filled')).toHaveLength(1);
      const after = await ecluseOk(['status', '--json'], { home: w.inside });
      expect((after.json as { gaps: unknown }).gaps).toEqual([]);
      await ecluseOk(['receipt', 'export', '--to', w.path('r2'), '--json'], { home: w.inside });
      expect(receiptPayload(w.path('r2')).gaps).toEqual([]);
      // The high-water mark stays at 3.
      expect(receiptPayload(w.path('r2')).stations).toEqual([expect.objectContaining({ station, sequence: 3 })]);

      // Now any bundle 2 is a replay: the genuine one again, and the forged one.
      await expectImportRefused(w, w.path('m2-pristine'), 'E_REPLAY');
      await expectImportRefused(w, w.path('m2-forged'), 'E_REPLAY');
    },
    JOURNEY_MS,
  );

  it(
    'a late bundle whose successor is not accepted yet waits for it (E_SEQUENCE_GAP), then follows the chain back',
    async () => {
      const w = await fresh();
      for (const n of [1, 2, 3, 4]) {
        await w.addImage(`img-${n}`, '1.0', 16 * KiB);
        await w.exportTo(w.path(`m${n}`));
      }
      for (const n of [1, 4]) expect((await w.importJson(w.path(`m${n}`))).code).toBe(0);
      // 2 is below the high-water mark (4), but 3, which must name it, is not accepted yet.
      const early = await expectImportRefused(w, w.path('m2'), 'E_SEQUENCE_GAP');
      expect((early.json as { message: string }).message).toMatch(
        /^bundle 3 from station \S+, which must name this bundle 2 as its predecessor, has not been imported; import bundle 3 first$/,
      );
      const three = await w.importJson(w.path('m3'));
      expect(three.json).toMatchObject({ ok: true, chain: { position: 'late', successor: 4 } });
      const two = await w.importJson(w.path('m2'));
      expect(two.json).toMatchObject({ ok: true, chain: { position: 'late', successor: 3 } });
    },
    JOURNEY_MS,
  );

  it(
    'an artifact the site already holds, same version and digest, is "already here": not promoted twice',
    async () => {
      const w = await fresh();
      const img = await w.addImage('debian-13', '1.0', 32 * KiB);
      await w.exportTo(w.path('m1'));
      expect((await w.importJson(w.path('m1'))).code).toBe(0);
      // A second export station carries the very same file under the same name and version.
      const other = w.path('outside-2');
      await ecluseOk(['relay', 'add', img.file, '--name', 'debian-13', '--version', '1.0', '--disk-format', 'raw'], {
        home: other,
      });
      await ecluseOk(['export', '--to', mediaDir(w.path('m2')), '--site', w.site, '--signer', keys.signer('alice')], {
        home: other,
      });
      const before = snapshot(w.inside);
      const r = await w.importJson(w.path('m2'));
      expect(r.code, r.stderr).toBe(0);
      const json = r.json as ImportJson;
      expect(json.images).toEqual([]);
      expect(json.alreadyHere).toEqual([
        { name: 'debian-13', version: '1.0', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      ]);
      const after = snapshot(w.inside);
      expect(after.images).toEqual(before.images);
      expect(after.files).toEqual(before.files);
      expect(after.bundles).toHaveLength(before.bundles.length + 1);
    },
    JOURNEY_MS,
  );
});

describe('order: strict (site policy)', () => {
  it(
    'bundle 3 after a refused 2 is E_SEQUENCE_GAP with the resend command; 2 resent, then 3, are accepted',
    async () => {
      const w = await fresh();
      await applyPolicy(w, 'version: 1\norder: strict\nrules:\n  - name: any\n    artifacts: ["*"]\n');
      await threeBundles(w);
      await expectImportRefused(w, w.path('m2'), 'E_DIGEST');
      const gap = await expectImportRefused(w, w.path('m3'), 'E_SEQUENCE_GAP');
      expect((gap.json as { message: string }).message).toMatch(
        new RegExp(
          `^bundle 2 from station \\S+ has not been imported; this is 3 and the site policy asks for strict order \\(bundle 2 was refused here at \\S+: E_DIGEST\\); import bundle 2 first, or export it again outside: ecluse export --resend 2 --site ${w.site} --to MEDIA$`,
        ),
      );
      await w.exportTo(w.path('m2-resent'), ['--resend', '2']);
      expect((await w.importJson(w.path('m2-resent'))).json).toMatchObject({ ok: true, chain: { position: 'next' } });
      expect((await w.importJson(w.path('m3'))).json).toMatchObject({ ok: true, chain: { position: 'next' } });
      const db = new Database(path.join(w.inside, 'ecluse.sqlite'), { readonly: true });
      expect(db.prepare('SELECT sequence FROM stations').all()).toEqual([{ sequence: 3 }]);
      db.close();
    },
    JOURNEY_MS,
  );
});
