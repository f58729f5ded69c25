/**
 * The privileged half of self-update (systemd/ecluse-update), run here with a temporary spool for everything it does
 * before it touches dpkg -i or systemd: it takes each hand-over out of incoming/ (links and special files refused),
 * runs the root's own check (`ecluse self-update check`, the CLI from dist/, against anchors pinned in a temporary
 * folder), then its own checks; each refusal moves the package and its evidence to refused/, is said in one line,
 * and is written to results/ as a file the daemon's reader (verifier/update-results.ts) takes as a result: the two
 * halves of that contract are tested together here. Installing, waiting for READY and rolling back need systemd as
 * PID 1: test/packaging/appliance.slow.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseResult, type UpdateResult } from '../../verifier/update-results.js';
import { debSkip, tinyDeb, PACKAGE_POLICY } from '../helpers/deb.js';
import { CLI, ecluseOk, makeKeys, REPO, tmpDir, world, type World } from '../helpers/world.js';

const SCRIPT = path.join(REPO, 'systemd', 'ecluse-update');
const skip = debSkip;

const sha256 = (file: string) => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

describe.skipIf(skip !== null)('ecluse-update (the privileged installer) refuses before installing', () => {
  const dir = tmpDir('ecluse-update-');
  const anchors = path.join(dir, 'anchors');
  let w: World;
  beforeAll(async () => {
    // A site whose anchors root pinned (here into a temporary folder), with a policy that admits the package.
    w = await world({ keys: await makeKeys(path.join(dir, 'keys'), ['alice']), site: 'upd-1' });
    await ecluseOk(['self-update', 'pin', '--to', anchors, '--json'], { home: w.inside });
    fs.writeFileSync(w.path('policy.yaml'), PACKAGE_POLICY);
    await ecluseOk(['policy', 'apply', w.path('policy.yaml'), '--json'], { home: w.inside });
  }, 120_000);
  afterAll(() => {
    w?.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A real hand-over: `deb` added as an ecluse-package, exported for the site, imported into a fresh spool. */
  async function imported(deb: string): Promise<{ spool: string; sum: string; bundle: string }> {
    await ecluseOk(['relay', 'add', deb, '--type', 'ecluse-package', '--json'], { home: w.outside });
    const media = fs.mkdtempSync(path.join(dir, 'media-'));
    const exported = (await w.exportTo(media)).json as { bundle: { id: string } };
    const spool = fs.mkdtempSync(path.join(dir, 'spool-'));
    fs.mkdirSync(path.join(spool, 'incoming'));
    await ecluseOk(['import', media, '--update-spool', path.join(spool, 'incoming'), '--json'], { home: w.inside });
    return { spool, sum: sha256(deb), bundle: exported.bundle.id };
  }

  /** A spool with `file` handed over in incoming/ as `<name>.deb` (default: its sha256), and optional evidence. */
  function handOver(file: string, o: { name?: string; evidence?: Record<string, string> } = {}) {
    const spool = fs.mkdtempSync(path.join(dir, 'spool-'));
    fs.mkdirSync(path.join(spool, 'incoming'));
    const name = o.name ?? sha256(file);
    if (o.evidence) {
      for (const [rel, text] of Object.entries(o.evidence)) {
        fs.mkdirSync(path.dirname(path.join(spool, 'incoming', `${name}.bundle`, rel)), { recursive: true });
        fs.writeFileSync(path.join(spool, 'incoming', `${name}.bundle`, rel), text);
      }
    }
    fs.copyFileSync(file, path.join(spool, 'incoming', `${name}.deb`));
    return { spool, name, sum: sha256(file) };
  }
  function run(spool: string, env: Record<string, string> = {}) {
    return spawnSync('sh', [SCRIPT], {
      env: {
        ...process.env,
        ECLUSE_UPDATE_SPOOL: spool,
        ECLUSE_UPDATE_CLI: CLI,
        ECLUSE_UPDATE_ANCHORS: anchors,
        ...env,
      },
      encoding: 'utf8',
    });
  }
  /** The results the run wrote, each read by the daemon's own reader (none may be unreadable). */
  function results(spool: string): UpdateResult[] {
    const names = fs.readdirSync(path.join(spool, 'results')).sort();
    return names.map((n) => {
      const st = fs.statSync(path.join(spool, 'results', n));
      expect(st.mode & 0o777).toBe(0o644);
      const parsed = parseResult(n, fs.readFileSync(path.join(spool, 'results', n), 'utf8'));
      if ('why' in parsed) throw new Error(`${n}: ${parsed.why}`);
      return parsed.result;
    });
  }
  function expectRefused(
    spool: string,
    line: RegExp,
    kept: string[],
    code: string | RegExp,
    version: string | null = null,
  ): UpdateResult {
    const r = run(spool);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(line);
    expect(fs.readdirSync(path.join(spool, 'incoming'))).toEqual([]);
    expect(fs.readdirSync(path.join(spool, 'installing'))).toEqual([]);
    expect(fs.readdirSync(path.join(spool, 'refused')).sort()).toEqual(kept.sort());
    const [only, ...more] = results(spool);
    expect(more).toEqual([]);
    expect(only).toMatchObject({ event: 'update.refused', version });
    if (typeof code === 'string') expect(only?.code).toBe(code);
    else expect(only?.code).toMatch(code);
    const said = r.stderr.split('\n').find((l) => line.test(l)) ?? '';
    expect(said).toMatch(/; the package was moved to .*\/refused\/$/);
    expect(only?.message).toBe(said.replace(/^ecluse-update: /, '').replace(/; the package was moved to .*$/, ''));
    return only as UpdateResult;
  }

  it('refuses a package with no evidence: the root check runs first, before the installer trusts anything', () => {
    const { spool, sum } = handOver(tinyDeb(dir, { version: '9.0.0' }));
    const r = expectRefused(
      spool,
      /^ecluse-update: the root's check refused [0-9a-f]{64}\.deb: E_UPDATE: no evidence for [0-9a-f]{64}\.deb: .*$/m,
      [`${sum}.deb`],
      'E_UPDATE',
    );
    expect(r).toMatchObject({ sha256: sum, bundle: null });
  });

  it('passes a real hand-over to its own checks (here: no current.deb to roll back to), naming version and bundle', async () => {
    const { spool, sum, bundle } = await imported(tinyDeb(dir, { version: '9.1.0' }));
    expect(fs.readdirSync(path.join(spool, 'incoming')).sort()).toEqual([`${sum}.bundle`, `${sum}.deb`]);
    const r = expectRefused(
      spool,
      /^ecluse-update: no copy of the installed ecluse to roll back to: put its \.deb at .*\/current\.deb and hand the update over again/m,
      [`${sum}.deb`, `${sum}.bundle`],
      'E_UPDATE',
      '9.1.0',
    );
    expect(r).toMatchObject({ sha256: sum, bundle });
    // What went to refused/ is the evidence the check passed: the bundle's signatures and certificates.
    expect(fs.readdirSync(path.join(spool, 'refused', `${sum}.bundle`)).sort()).toEqual(['certificates', 'signatures']);
  });

  it('refuses a real hand-over whose evidence was changed after the daemon wrote it', async () => {
    const { spool, sum } = await imported(tinyDeb(dir, { version: '9.2.0' }));
    const sigs = path.join(spool, 'incoming', `${sum}.bundle`, 'signatures');
    for (const f of fs.readdirSync(sigs)) {
      const file = path.join(sigs, f);
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/"payload":"./, '"payload":"A'));
    }
    const r = expectRefused(
      spool,
      /^ecluse-update: the root's check refused [0-9a-f]{64}\.deb: E_[A-Z_]+: .*$/m,
      [`${sum}.deb`, `${sum}.bundle`],
      /^E_(SIGNATURE|FORMAT|THRESHOLD)$/,
    );
    expect(r.version).toBeNull();
  });

  it('refuses a hand-over whose sha256 is not its name (not whole), with its evidence', () => {
    const { spool, sum } = handOver(tinyDeb(dir, { version: '9.0.1' }), {
      name: 'a'.repeat(64),
      evidence: { 'signatures/alice.sig.json': '{}' },
    });
    const r = expectRefused(
      spool,
      /^ecluse-update: a{64}\.deb is not whole \(its sha256 is [0-9a-f]{64}\); the package was moved to .*\/refused\/$/m,
      [`${sum}.deb`, `${sum}.bundle`],
      'E_DIGEST',
    );
    expect(r.sha256).toBe(sum);
    expect(fs.readFileSync(path.join(spool, 'refused', `${sum}.bundle`, 'signatures', 'alice.sig.json'), 'utf8')).toBe(
      '{}',
    );
  });

  it('refuses a hand-over not named <sha256>.deb', () => {
    const { spool, sum } = handOver(tinyDeb(dir, { version: '9.0.2' }), { name: 'ecluse_9.0.2_amd64' });
    expectRefused(
      spool,
      /^ecluse-update: a hand-over is not named <sha256>\.deb \(its sha256 is [0-9a-f]{64}\)/m,
      [`${sum}.deb`],
      'E_UPDATE',
    );
  });

  it('refuses a link (to a file only root may read) without reading it, and evidence that holds a link', () => {
    const spool = fs.mkdtempSync(path.join(dir, 'spool-'));
    fs.mkdirSync(path.join(spool, 'incoming'));
    fs.symlinkSync('/etc/shadow', path.join(spool, 'incoming', `${'b'.repeat(64)}.deb`));
    const r = expectRefused(
      spool,
      /^ecluse-update: a hand-over in .*\/incoming\/ is not a regular file/m,
      [],
      'E_UPDATE',
    );
    expect(r.sha256).toBe('0'.repeat(64));

    const deb = tinyDeb(dir, { version: '9.0.3' });
    const linked = handOver(deb, { evidence: { 'trust/root.pem': 'x' } });
    fs.symlinkSync('/etc/shadow', path.join(linked.spool, 'incoming', `${linked.name}.bundle`, 'trust', 'shadow'));
    expectRefused(
      linked.spool,
      /^ecluse-update: the evidence of [0-9a-f]{64}\.deb holds a link or a special file/m,
      [`${linked.sum}.deb`, `${linked.sum}.bundle`],
      'E_UPDATE',
    );
  });

  it("writes the check's refusal as valid JSON whatever it says (quotes, backslashes, control characters)", () => {
    const fake = path.join(dir, 'fake-ecluse');
    fs.writeFileSync(fake, `#!/bin/sh\nprintf 'E_SIGNATURE: a "quoted" \\\\ back\\tslash\\033[31m\\n' >&2\nexit 1\n`, {
      mode: 0o755,
    });
    const { spool } = handOver(tinyDeb(dir, { version: '9.0.4' }));
    const r = run(spool, { ECLUSE_UPDATE_CLI: fake });
    expect(r.status, r.stderr).toBe(0);
    const [only] = results(spool);
    expect(only).toMatchObject({ event: 'update.refused', code: 'E_SIGNATURE' });
    expect(only?.message).toMatch(/: E_SIGNATURE: a "quoted" \\ backslash\[31m$/);
  });

  it('keeps the newest 100 results', () => {
    const { spool } = handOver(tinyDeb(dir, { version: '9.0.5' }));
    fs.mkdirSync(path.join(spool, 'results'));
    for (let i = 0; i < 105; i++) {
      fs.writeFileSync(
        path.join(
          spool,
          'results',
          `20200101T0000${String(i).padStart(2, '0')}Z-${'c'.repeat(64)}-update.installed.json`,
        ),
        '{}',
      );
    }
    expect(run(spool).status).toBe(0);
    const left = fs.readdirSync(path.join(spool, 'results')).sort();
    expect(left).toHaveLength(100);
    expect(left[0]).toBe(`20200101T000006Z-${'c'.repeat(64)}-update.installed.json`);
    expect(left.at(-1)).toMatch(/^\d{8}T\d{6}\.\d{9}Z-[0-9a-f]{64}-update\.refused\.json$/);
  });

  it('says so when the spool is empty', () => {
    const spool = fs.mkdtempSync(path.join(dir, 'spool-'));
    const r = run(spool);
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/^ecluse-update: no package in .*\/incoming$/m);
    expect(fs.readdirSync(path.join(spool, 'results'))).toEqual([]);
  });
});
