/**
 * The shared setup of the hostile-bundle tests (test/e2e/hostile.test.ts, test/e2e/hostile-contents.test.ts, and
 * test/e2e/attested-digests.test.ts, which re-signs edited statements the same way): one fixture site per test file
 * (test/helpers/hostile.ts), fresh worlds of that site with a bundle exported by the real `ecluse export`, and the
 * pieces of the one-line refusal messages those tests check.
 */
import { afterAll, beforeAll } from 'vitest';
import { hostileSite, type HostileSite } from './hostile.js';
import { bundleOn, ecluseOk, tmpDir, world, type RunResult, type World } from './world.js';

export const KiB = 1024;

export const messageOf = (r: RunResult) => (r.json as { message: string }).message;
export const short = (keyId: string) => `${keyId.slice(0, 12)}…`;

/** The recovery a refusal's line ends with when the export station must act (verifier/refusal.ts). */
export const resend = (w: World, n: number) =>
  `; export it again outside: ecluse export --resend ${n} --site ${w.site} --to MEDIA`;
export const replace = (w: World, n: number) =>
  `; export a replacement outside: ecluse export --replace ${n} --site ${w.site} --to MEDIA`;
/** Before the statement is verified its sequence is not known for certain: the command says where to read it. */
export const UNKNOWN_N = ' (N: the bundle\'s sequence, shown by "ecluse inspect MEDIA")';
export const resendUnknown = (w: World) =>
  `; export it again outside: ecluse export --resend N --site ${w.site} --to MEDIA${UNKNOWN_N}`;
export const resignUnknown = (w: World) =>
  `; sign it again outside with enough trusted signers: ecluse export --resend N --site ${w.site} --to MEDIA --signer DIR --signer DIR${UNKNOWN_N}`;
export const escapeRe = (t: string) => t.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Registers the hooks of a test file (beforeAll: make the fixture site; afterAll: clean up the worlds and the site)
 * and returns what its tests build on. Call it once, at the top level of the file.
 */
export function hostileWorlds() {
  let site: HostileSite | undefined;
  const worlds: World[] = [];

  beforeAll(async () => {
    site = await hostileSite(tmpDir('ecluse-hostile-'));
  });

  afterAll(() => {
    for (const w of worlds) w.cleanup();
    site?.cleanup();
  });

  /** The fixture site (made in beforeAll, so only inside a test). */
  function siteOf(): HostileSite {
    if (!site) throw new Error('the hostile fixture site is made in beforeAll: use it inside a test');
    return site;
  }

  async function fresh(): Promise<World> {
    const w = await world({ keys: siteOf().keys });
    worlds.push(w);
    return w;
  }

  /** A fresh world with one image (`img`) exported (signed by alice unless told) to `<root>/media`. */
  async function exported(o: { size?: number; exportArgs?: string[]; signers?: string[] } = {}) {
    const w = await fresh();
    const img = await w.addImage('img', '1.0.0', o.size ?? 200 * KiB);
    const media = w.path('media');
    await w.exportTo(media, o.exportArgs ?? [], o.signers ? { signers: o.signers } : {});
    return { w, img, media, bundle: bundleOn(media) };
  }

  /** A second import home of the same site requiring `threshold` distinct signers. */
  async function insideWithThreshold(w: World, threshold: number): Promise<string> {
    const home = w.path(`inside-threshold-${threshold}`);
    await ecluseOk(
      ['site', 'init', '--trust', siteOf().keys.trust, '--site', w.site, '--threshold', String(threshold), '--json'],
      {
        home,
      },
    );
    return home;
  }

  return { site: siteOf, fresh, exported, insideWithThreshold };
}
