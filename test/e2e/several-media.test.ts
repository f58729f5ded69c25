/**
 * A bundle over several sticks from the CLI: `export --to A --to B --to C` spreads the volumes; `verify` and `import`
 * take every folder given, in any order, and read each volume where it lies. A missing stick is E_MISSING_VOLUME naming
 * the volumes still missing; sticks that do not carry the same signed files are refused (E_FORMAT); both leave store,
 * catalog and accepted state unchanged.
 */
import fs from 'node:fs';
import path from 'node:path';
import { exitCodeFor } from '../../sneakernet/errors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bundleOn,
  ecluse,
  expectFailureOutput,
  expectImportRefused,
  snapshot,
  world,
  type World,
} from '../helpers/world.js';

const MiB = 1024 * 1024;
let w: World;
let sticks: string[];
let id: string;

beforeAll(async () => {
  w = await world();
  await w.addImage('spread', '1.0.0', 2.5 * MiB);
  sticks = ['A', 'B', 'C'].map((n) => w.path(`stick-${n}`));
  for (const s of sticks) fs.mkdirSync(s);
  await w.exportTo(sticks[0] as string, [
    '--to',
    sticks[1] as string,
    '--to',
    sticks[2] as string,
    '--media-size',
    '1M',
  ]);
  id = bundleOn(sticks[0] as string).id;
});
afterAll(() => w?.cleanup());

/** The recovery a missing volume names: the bundle written again outside (or the missing stick given). */
const resend = () => `export it again outside: ecluse export --resend 1 --site ${w.site} --to MEDIA`;
const volumesOn = (stick: string) => fs.readdirSync(path.join(stick, 'ecluse', 'bundles', id, 'volumes')).sort();

describe('a bundle over several media', () => {
  it('the export spread the volumes: no stick holds them all', () => {
    const all = sticks.flatMap(volumesOn);
    expect(all.length).toBeGreaterThanOrEqual(3);
    for (const s of sticks) {
      expect(volumesOn(s).length).toBeGreaterThan(0);
      expect(volumesOn(s).length).toBeLessThan(all.length);
    }
  });

  it('one stick alone is refused (E_MISSING_VOLUME) naming what it lacks', async () => {
    const lacking = sticks.flatMap(volumesOn).filter((v) => !volumesOn(sticks[0] as string).includes(v));
    const r = await expectImportRefused(w, sticks[0] as string, 'E_MISSING_VOLUME');
    const n = sticks.flatMap(volumesOn).length;
    expect((r.json as { message: string }).message).toBe(
      `${lacking.join(', ')} of the ${n} volumes of bundle ${id} ${lacking.length === 1 ? 'is' : 'are'} not on the media; ${resend()}`,
    );
  });

  it('two sticks of three: E_MISSING_VOLUME names the volumes of the third; nothing changed', async () => {
    const [a, b, c] = sticks as [string, string, string];
    const before = snapshot(w.inside);
    const r = await ecluse(['import', c, a, '--json'], { home: w.inside });
    expect(r.code).toBe(1);
    const json = expectFailureOutput(r, 'E_MISSING_VOLUME');
    const n = sticks.flatMap(volumesOn).length;
    const missing = volumesOn(b);
    expect(json.message).toBe(
      `${missing.join(', ')} of the ${n} volumes of bundle ${id} ${missing.length === 1 ? 'is' : 'are'} not on the media; ${resend()}`,
    );
    expect(snapshot(w.inside)).toEqual(before);
  });

  it('sticks that do not carry the same signatures are refused (E_FORMAT); nothing changed', async () => {
    const odd = w.path('stick-B-odd');
    fs.cpSync(sticks[1] as string, odd, { recursive: true });
    const sigDir = path.join(odd, 'ecluse', 'bundles', id, 'signatures');
    const sig = path.join(sigDir, fs.readdirSync(sigDir)[0] as string);
    fs.writeFileSync(sig, `${fs.readFileSync(sig, 'utf8')}\n`);
    const before = snapshot(w.inside);
    const r = await ecluse(['import', sticks[0] as string, odd, sticks[2] as string, '--json'], { home: w.inside });
    expect(r.code).toBe(1);
    expect(expectFailureOutput(r, 'E_FORMAT').message).toBe(
      `bundle ${id} on ${odd} carries other signatures, certificates or trust files than on ${sticks[0]}: these media are not of one export; give only the media of one bundle`,
    );
    expect(snapshot(w.inside)).toEqual(before);
  });

  it('verify, then import, from all three given in any order', async () => {
    const [a, b, c] = sticks as [string, string, string];
    const v = await ecluse(['verify', b, c, a, '--json'], { home: w.inside });
    expect(v.code, v.stderr).toBe(0);
    expect(v.json).toMatchObject({ ok: true, artifacts: [{ name: 'spread', version: '1.0.0', size: 2.5 * MiB }] });
    const r = await ecluse(['import', c, a, b, '--json'], { home: w.inside });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({
      ok: true,
      bundle: { id, sequence: 1 },
      images: [{ name: 'spread', version: '1.0.0' }],
    });
    expect(snapshot(w.inside).staging).toEqual([]);
  });

  it('a resend onto media smaller than its signed volumes is refused before writing (E_NO_SPACE), naming the way out', async () => {
    const small = w.path('stick-small');
    fs.mkdirSync(small);
    const r = await ecluse(
      [
        'export',
        '--resend',
        '1',
        '--site',
        w.site,
        '--to',
        small,
        '--media-size',
        '256K',
        '--signer',
        w.keys.signer('alice'),
        '--json',
      ],
      { home: w.outside },
    );
    expect(r.code, r.stderr).toBe(exitCodeFor('E_NO_SPACE'));
    const { message } = expectFailureOutput(r, 'E_NO_SPACE');
    expect(message).toMatch(
      /^vol-0001\.tar is \d+ bytes, more than the \d+ bytes --media-size 262144 leaves for a volume; a resent bundle keeps its signed volumes: use media of at least \d+ bytes, or export --replace to split it again$/,
    );
    expect(fs.readdirSync(small)).toEqual([]);
  });
});
