/**
 * Interrupted and odd exports through the real CLI (issue 12): SIGINT or SIGTERM while writing removes the unfinished
 * `.partial-*` folder and ends with E_INTERRUPTED (exit 3), recording nothing; a `.partial-*` left by a killed run is
 * removed by the next export, which says so; on a real small filesystem (tmpfs) a `--media-size` equal to the free
 * space of the empty medium works, and a bundle that does not fit is E_NO_SPACE before a byte is written, with the
 * margin in the message's numbers. Needs root (mount -t tmpfs).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI,
  ecluse,
  ecluseOk,
  expectFailureOutput,
  mediaDir,
  PASSPHRASE,
  world,
  type World,
} from '../helpers/world.js';

const MiB = 1024 * 1024;

function bundleEntries(media: string): string[] {
  const dir = path.join(media, 'ecluse', 'bundles');
  return fs.existsSync(dir) ? fs.readdirSync(dir) : [];
}

/** Starts `ecluse export` and sends `signal` once its `.partial-*` folder appears on the medium. */
async function exportInterrupted(
  w: World,
  media: string,
  signal: NodeJS.Signals,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; seen: string }> {
  mediaDir(media);
  const child = spawn(
    process.execPath,
    [
      CLI,
      'export',
      '--to',
      media,
      '--site',
      w.site,
      '--signer',
      w.keys.signer('alice'),
      '--media-size',
      '16M',
      '--json',
    ],
    {
      env: { ...process.env, ECLUSE_HOME: w.outside, ECLUSE_PASSPHRASE: PASSPHRASE },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, sig) => resolve({ code, signal: sig })),
  );
  let seen = '';
  for (let i = 0; i < 6000 && !seen; i++) {
    // Wait until a volume is being written, not only the folder made.
    seen = bundleEntries(media).find((n) => n.startsWith('.partial-')) ?? '';
    if (seen && !fs.existsSync(path.join(media, 'ecluse', 'bundles', seen, 'volumes', 'vol-0001.tar'))) seen = '';
    if (!seen) await new Promise((r) => setTimeout(r, 10));
  }
  child.kill(signal);
  return { ...(await exited), stdout, stderr, seen };
}

describe('interrupted exports', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
    await w.addImage('big', '1', 96 * MiB);
  });
  afterAll(() => w.cleanup());

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} while writing removes the .partial folder, ends E_INTERRUPTED and records nothing`, async () => {
      const media = w.path(`m-${signal}`);
      const r = await exportInterrupted(w, media, signal);
      expect(r.seen, 'the export was caught while writing').toMatch(/^\.partial-/);
      expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 3 });
      expectFailureOutput({ code: r.code ?? -1, stdout: r.stdout, stderr: r.stderr, json: undefined }, 'E_INTERRUPTED');
      expect(bundleEntries(media)).toEqual([]);
      const sites = (await ecluseOk(['relay', 'sites', '--json'], { home: w.outside })).json as {
        sites: Array<{ site: string; lastWritten: number }>;
      };
      expect(sites.sites).toEqual([]);
    });
  }

  it('removes a .partial folder left by a killed export, and says so', async () => {
    const media = w.path('m-killed');
    const killed = await exportInterrupted(w, media, 'SIGKILL');
    expect(killed.signal).toBe('SIGKILL');
    expect(bundleEntries(media)).toEqual([killed.seen]);
    const plan = (
      await ecluseOk(['export', '--plan', '--site', w.site, '--to', media, '--media-size', '16M', '--json'], {
        home: w.outside,
      })
    ).json as { plan: { media: Array<{ abandoned: string[] }> } };
    expect(plan.plan.media[0]?.abandoned.map((p) => path.basename(p))).toEqual([killed.seen]);
    const human = await ecluseOk(
      ['export', '--to', media, '--site', w.site, '--signer', w.keys.signer('alice'), '--media-size', '16M'],
      { home: w.outside },
    );
    expect(human.stdout).toContain(
      `removed ${path.join(media, 'ecluse', 'bundles', killed.seen)}, left by an export that was interrupted`,
    );
    const left = bundleEntries(media);
    expect(left).toHaveLength(1);
    expect(left[0]).not.toMatch(/^\./);
  });
});

describe('free space on a real small medium (tmpfs)', () => {
  let w: World;
  let stick: string;
  beforeAll(async () => {
    w = await world();
    stick = w.path('stick');
    fs.mkdirSync(stick);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', stick]);
  });
  afterAll(() => {
    execFileSync('umount', [stick]);
    w.cleanup();
  });
  const free = () => {
    const s = fs.statfsSync(stick);
    return s.bavail * s.bsize;
  };

  it('a --media-size equal to the free space of the empty medium works', async () => {
    await w.addImage('fits', '1', 3 * MiB);
    const size = free();
    const r = await ecluseOk(
      [
        'export',
        '--to',
        stick,
        '--site',
        w.site,
        '--signer',
        w.keys.signer('alice'),
        '--media-size',
        String(size),
        '--json',
      ],
      { home: w.outside },
    );
    expect(r.json).toMatchObject({ ok: true, bundle: { sequence: 1 } });
    expect((await w.importJson(stick)).code).toBe(0);
    fs.rmSync(path.join(stick, 'ecluse'), { recursive: true });
  });

  it('a bundle that does not fit is E_NO_SPACE before a byte is written, the margin in its numbers', async () => {
    await w.addImage('too-big', '1', 3.5 * MiB);
    await w.addImage('too-big-2', '1', 1 * MiB);
    const size = free();
    const plan = (
      await ecluseOk(['export', '--plan', '--to', stick, '--site', w.site, '--media-size', String(size), '--json'], {
        home: w.outside,
      })
    ).json as { plan: { refusal: { code: string; message: string } | null; media: Array<{ margin: number }> } };
    expect(plan.plan.refusal?.code).toBe('E_NO_SPACE');
    const r = await ecluse(
      [
        'export',
        '--to',
        stick,
        '--site',
        w.site,
        '--signer',
        w.keys.signer('alice'),
        '--media-size',
        String(size),
        '--json',
      ],
      { home: w.outside },
    );
    expect(r.code).toBe(3);
    const f = expectFailureOutput(r, 'E_NO_SPACE');
    expect(f.message).toBe(plan.plan.refusal?.message);
    expect(f.message).toContain(`margin ${plan.plan.media[0]?.margin ?? -1}`);
    expect(f.message).toContain(`has ${size} bytes free`);
    expect(bundleEntries(stick)).toEqual([]);
  });
});
