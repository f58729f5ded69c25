/**
 * The root's side of self-update (docs/FORMAT.md 4.10), through the CLI from dist/: `ecluse self-update pin` copies the
 * site's anchors, id and threshold into a folder of its own (and `site init` run as root does it too), and `ecluse
 * self-update check FILE.deb` re-verifies a package handed over, with its evidence folder, against those anchors only.
 * Refused: a changed package, evidence signed under another site's root, below the pinned threshold, for another site,
 * and no anchors pinned at all.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSigner } from '../../../keys/signer.js';
import { debSkip, tinyDeb, PACKAGE_POLICY } from '../../helpers/deb.js';
import { editAndResign } from '../../helpers/hostile.js';
import {
  ecluse,
  ecluseOk,
  expectFailureOutput,
  flipByte,
  makeKeys,
  PASSPHRASE,
  sha256,
  tmpDir,
  world,
  type Keys,
  type World,
} from '../../helpers/world.js';

interface HandOver {
  w: World;
  spool: string;
  deb: string;
  sum: string;
}

describe.skipIf(debSkip !== null)('ecluse self-update pin and check', () => {
  let root: string;
  let keys: Keys;
  let otherKeys: Keys;
  let alpha: HandOver;
  let anchors: string;
  const worlds: World[] = [];

  /** A world for `site` signed with `k`, whose import hands ecluse `version` over into its own spool. */
  async function handedOver(k: Keys, site: string, version: string): Promise<HandOver> {
    const w = await world({ keys: k, site });
    worlds.push(w);
    fs.writeFileSync(w.path('policy.yaml'), PACKAGE_POLICY);
    await ecluseOk(['policy', 'apply', w.path('policy.yaml'), '--json'], { home: w.inside });
    const file = tinyDeb(w.root, { version });
    await ecluseOk(['relay', 'add', file, '--type', 'ecluse-package', '--json'], { home: w.outside });
    await w.exportTo(w.path('m1'));
    const spool = w.path('incoming');
    fs.mkdirSync(spool);
    await ecluseOk(['import', w.path('m1'), '--update-spool', spool, '--json'], { home: w.inside });
    const sum = sha256(fs.readFileSync(file));
    return { w, spool, deb: path.join(spool, `${sum}.deb`), sum };
  }

  beforeAll(async () => {
    root = tmpDir('ecluse-self-update-check-');
    keys = await makeKeys(path.join(root, 'keys'));
    otherKeys = await makeKeys(path.join(root, 'other-keys'));
    alpha = await handedOver(keys, 'site-alpha', '0.2.0');
    anchors = path.join(root, 'anchors');
  });
  afterAll(() => {
    for (const w of worlds) w.cleanup();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const check = (deb: string, dir = anchors) => ecluse(['self-update', 'check', deb, '--anchors', dir, '--json']);

  it('pin copies the anchors, site id and threshold (0755/0644); again is a no-op; site init as root pinned too', async () => {
    const r = await ecluseOk(['self-update', 'pin', '--to', anchors, '--json'], { home: alpha.w.inside });
    expect(r.json).toMatchObject({ ok: true, anchors, changed: true, site: 'site-alpha', threshold: 1 });
    expect(fs.readdirSync(anchors).sort()).toEqual(['root.pem', 'site.json', 'trust.json']);
    expect(fs.statSync(anchors).mode & 0o777).toBe(0o755);
    for (const f of ['root.pem', 'site.json', 'trust.json'])
      expect(fs.statSync(path.join(anchors, f)).mode & 0o777, f).toBe(0o644);
    expect(fs.readFileSync(path.join(anchors, 'root.pem'))).toEqual(fs.readFileSync(path.join(keys.trust, 'root.pem')));
    const again = await ecluseOk(['self-update', 'pin', '--to', anchors, '--json'], { home: alpha.w.inside });
    expect(again.json).toMatchObject({ changed: false });
    // Another site's anchors over them: refused, nothing changed.
    const other = await handedOverHome(otherKeys);
    const refused = await ecluse(['self-update', 'pin', '--to', anchors, '--json'], { home: other });
    expect(refused.code).toBe(3);
    expectFailureOutput(refused, 'E_ALREADY_INITIALIZED');
    expect(fs.readFileSync(path.join(anchors, 'root.pem'))).toEqual(fs.readFileSync(path.join(keys.trust, 'root.pem')));
    if (process.getuid?.() === 0) {
      // The tests run site init as root: it pinned beside the home (test/helpers/world.ts), and said so.
      expect(fs.readdirSync(`${alpha.w.inside}.self-update`).sort()).toEqual(['root.pem', 'site.json', 'trust.json']);
    }
  });

  async function handedOverHome(k: Keys): Promise<string> {
    const home = path.join(root, `inside-${worlds.length}-${Math.random().toString(16).slice(2)}`);
    const r = await ecluseOk(['site', 'init', '--trust', k.trust, '--site', 'site-alpha', '--json'], { home });
    // Run as root (as here), site init pins the self-update anchors itself and says where.
    expect((r.json as { selfUpdateAnchors: string | null }).selfUpdateAnchors).toBe(
      process.getuid?.() === 0 ? `${home}.self-update` : null,
    );
    return home;
  }

  it('check: the package handed over is the one the site signed', async () => {
    const r = await check(alpha.deb);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      ok: true,
      package: { name: 'ecluse', version: '0.2.0', sha256: alpha.sum },
      bundle: { site: 'site-alpha', sequence: 1, signers: ['alice'] },
      evidence: path.join(alpha.spool, `${alpha.sum}.bundle`),
    });
    const human = await ecluse(['self-update', 'check', alpha.deb, '--anchors', anchors]);
    expect(human.stdout).toMatch(
      /^ecluse 0\.2\.0 \(\w+\) is the package bundle .* #1 signed for site site-alpha by alice: it may be installed$/m,
    );
  });

  it('check refuses a changed package: by its name, and renamed to its new digest with the evidence beside it', async () => {
    const dir = path.join(root, 'tampered');
    fs.cpSync(alpha.spool, dir, { recursive: true });
    const deb = path.join(dir, `${alpha.sum}.deb`);
    flipByte(deb, fs.statSync(deb).size - 30);
    const r = await check(deb);
    expect(r.code).toBe(1);
    expect(expectFailureOutput(r, 'E_DIGEST').message).toMatch(/is not whole: its sha256 is/);
    // Named after its own digest, the evidence copied under that name: not the package the statement signed.
    const sum = sha256(fs.readFileSync(deb));
    fs.renameSync(deb, path.join(dir, `${sum}.deb`));
    fs.cpSync(path.join(dir, `${alpha.sum}.bundle`), path.join(dir, `${sum}.bundle`), { recursive: true });
    const renamed = await check(path.join(dir, `${sum}.deb`));
    expect(renamed.code).toBe(1);
    expect(expectFailureOutput(renamed, 'E_DIGEST').message).toMatch(/is not the package bundle .* signed/);
    // No evidence beside a package: refused naming what is missing.
    fs.rmSync(path.join(dir, `${sum}.bundle`), { recursive: true });
    const bare = await check(path.join(dir, `${sum}.deb`));
    expect(expectFailureOutput(bare, 'E_UPDATE').message).toMatch(/no evidence for .*\.bundle\/ .* is missing/);
  });

  it('check refuses a package whose control file does not say what was signed (a validly signed, wrong statement)', async () => {
    const dir = path.join(root, 'mislabelled');
    fs.cpSync(alpha.spool, dir, { recursive: true });
    const evidence = path.join(dir, `${alpha.sum}.bundle`);
    const alice = await loadSigner(keys.signer('alice'), () => Promise.resolve(PASSPHRASE));
    const asBundle = {
      media: dir,
      id: `${alpha.sum}.bundle`,
      root: evidence,
      volumesDir: path.join(evidence, 'volumes'),
      signaturesDir: path.join(evidence, 'signatures'),
      volumes: [],
      volume: () => '',
    };
    await editAndResign(asBundle, [alice], (st) => {
      const p = st.predicate as { artifacts: Array<Record<string, unknown>> };
      const subject = st.subject as Array<{ name: string }>;
      const i = p.artifacts.findIndex((x) => x.type === 'ecluse-package');
      (p.artifacts[i] as { version: string }).version = '0.2.1';
      (subject[i] as { name: string }).name = 'ecluse@0.2.1';
    });
    const r = await check(path.join(dir, `${alpha.sum}.deb`));
    expect(r.code).toBe(1);
    expect(expectFailureOutput(r, 'E_UPDATE').message).toMatch(
      /does not say what was signed: Version 0\.2\.0 \(signed: 0\.2\.1\)/,
    );
  });

  it('check refuses evidence signed under another site root, below the threshold, or for another site', async () => {
    const foreign = await handedOver(otherKeys, 'site-alpha', '0.2.0');
    const f = await check(foreign.deb);
    expect(f.code).toBe(1);
    expect(['E_UNTRUSTED_SIGNER', 'E_THRESHOLD']).toContain((f.json as { code: string }).code);

    const strict = path.join(root, 'anchors-2-of-n');
    const home2 = path.join(root, 'inside-threshold-2');
    await ecluseOk(['site', 'init', '--trust', keys.trust, '--site', 'site-alpha', '--threshold', '2', '--json'], {
      home: home2,
    });
    await ecluseOk(['self-update', 'pin', '--to', strict, '--json'], { home: home2 });
    const t = await check(alpha.deb, strict);
    expect(t.code).toBe(1);
    expect(expectFailureOutput(t, 'E_THRESHOLD').message).toMatch(/2/);

    const beta = await handedOver(keys, 'site-beta', '0.2.0');
    const b = await check(beta.deb);
    expect(b.code).toBe(1);
    expect(expectFailureOutput(b, 'E_WRONG_SITE').message).toMatch(
      /signed for site site-beta; this station is pinned to site site-alpha/,
    );
  });

  it('check keeps the newest revocation list it verified: evidence without one cannot bring a revoked key back', async () => {
    const k = await makeKeys(path.join(root, 'keys-revoking'));
    const first = await handedOver(k, 'site-alpha', '0.2.0');
    const dir = path.join(root, 'anchors-revoking');
    await ecluseOk(['self-update', 'pin', '--to', dir, '--json'], { home: first.w.inside });
    expect((await check(first.deb, dir)).code).toBe(0);
    expect(fs.existsSync(path.join(dir, 'revocations.json'))).toBe(false);
    // alice is revoked; bob signs the next package, whose evidence carries the list.
    await ecluseOk(['keys', 'revoke', 'alice', '--keys', k.dir, '--json']);
    const next = tinyDeb(first.w.root, { version: '0.3.0' });
    await ecluseOk(['relay', 'add', next, '--type', 'ecluse-package', '--json'], { home: first.w.outside });
    await first.w.exportTo(first.w.path('m2'), [], { signers: [k.signer('bob')] });
    await ecluseOk(['import', first.w.path('m2'), '--update-spool', first.spool, '--json'], { home: first.w.inside });
    const second = path.join(first.spool, `${sha256(fs.readFileSync(next))}.deb`);
    expect(fs.readdirSync(path.join(first.spool, `${sha256(fs.readFileSync(next))}.bundle`, 'trust'))).toEqual([
      'revocations.sigstore.json',
    ]);
    const ok = await check(second, dir);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'revocations.json'), 'utf8'))).toMatchObject({ version: 1 });
    // The first evidence, signed by alice, carries no list: the kept one refuses it.
    const revoked = await check(first.deb, dir);
    expect(revoked.code).toBe(1);
    expect(expectFailureOutput(revoked, 'E_REVOKED').message).toMatch(/alice/);
  });

  it('check refuses when no anchors are pinned, naming ecluse self-update pin', async () => {
    const r = await check(alpha.deb, path.join(root, 'nothing-here'));
    expect(r.code).toBe(1);
    expect(expectFailureOutput(r, 'E_UPDATE').message).toMatch(
      /no self-update anchors are pinned .*ecluse self-update pin/,
    );
  });
});
