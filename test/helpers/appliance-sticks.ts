/**
 * What the appliance proof carries into the guest, made on the host: the image (`packaging/build-appliance.sh`, cached
 * while its inputs are unchanged) with this checkout's .deb, and the sticks of each scenario, as disk images with the
 * file system a site would meet (vfat, exFAT, ext4, ISO 9660, none). Bundles are exported by a real export station
 * (test/helpers/world.ts) for the site `vm-1`; the self-update sticks carry other versions of the build's own package.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeBlankStick, makeExfatStick, makeExt4Stick, makeIsoStick, makeVfatStick } from './vm.js';
import { bundleOn, copyMedia, ecluseOk, flipByte, makeKeys, REPO, world, type World } from './world.js';

const MiB = 1024 * 1024;

export const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string })
  .version;
/** The next version of the package, carried in a bundle: installed. */
export const NEXT = `${VERSION}+next1`;
/** A next-but-one whose daemon never reports READY: installed, then rolled back. */
export const BROKEN = `${VERSION}+next2`;
/** A newer package root drops into the spool with no evidence: the root's own check refuses it. */
export const ROGUE = `${VERSION}+next9`;
/** The bundle that is long enough to read (at the drop-in's 1 MB/s) to pull its stick mid-import. */
export const PULLED = 32 * MiB;

/**
 * Another version of the build's package (dpkg-deb -R, then -b): the control Version and what `ecluse --version`
 * says; `hang`: its daemon starts but never reports READY (it waits forever before doing anything).
 */
export function repackDeb(deb: string, out: string, version: string, hang: boolean): void {
  const x = `${out}.d`;
  execFileSync('dpkg-deb', ['-R', deb, x]);
  const control = path.join(x, 'DEBIAN', 'control');
  fs.writeFileSync(control, fs.readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${version}`));
  const main = path.join(x, 'usr', 'lib', 'ecluse', 'dist', 'ecluse', 'main.js');
  const shipped = fs.readFileSync(main, 'utf8');
  let js = shipped.replace(/\.version\((['"])([^'"]+)\1\)/, (_m, _q: string, v: string) =>
    v === VERSION ? `.version('${version}')` : _m,
  );
  if (js === shipped) throw new Error(`${main} does not set the version ${VERSION}`);
  if (hang) {
    const nl = js.indexOf('\n') + 1;
    js = `${js.slice(0, nl)}if (process.argv.includes('daemon')) await new Promise(() => setInterval(() => {}, 60_000));\n${js.slice(nl)}`;
  }
  fs.writeFileSync(main, js);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '-z1', '--build', x, out], { stdio: 'ignore' });
  fs.rmSync(x, { recursive: true });
}

/** This checkout's .deb (built from dist/, not rebuilt) and the appliance image holding it, both under `dir`. */
export function buildAppliance(dir: string): { deb: string; image: string } {
  const lastLine = (out: string) => out.trim().split('\n').pop() as string;
  const deb = lastLine(
    execFileSync('bash', [path.join(REPO, 'packaging/build-deb.sh'), '--no-build', '--out', dir], { encoding: 'utf8' }),
  );
  const image = lastLine(
    execFileSync('bash', [path.join(REPO, 'packaging/build-appliance.sh'), '--deb', deb], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  );
  return { deb, image };
}

export interface ApplianceSticks {
  /** The export station that made the bundles (its keys are the site's trust). */
  world: World;
  /** The bundle id on each stick that carries one, by stick name. */
  bundles: Record<string, string>;
  /** The disk image of a stick, by name. */
  stick(name: string): string;
}

/**
 * Every stick of the proof, in the order the scenarios plug them: `trust` (the site's trust, vfat), `good` (a bundle on
 * partitioned vfat), `two-a` + `two-b` (one bundle over an exFAT and an ext4 stick), `iso`, `hostile` (a volume byte
 * changed after signing), `blank` (no file system), `pulled` (a 32 MiB bundle), `deb` (the package itself),
 * `upd-next` and `upd-broken` (self-update bundles), `rogue` (a package with no evidence).
 */
export async function makeApplianceSticks(dir: string, deb: string): Promise<ApplianceSticks> {
  const stick = (name: string) => path.join(dir, `${name}.img`);
  const keys = await makeKeys(path.join(dir, 'keys'), ['alice']);
  const w = await world({ keys, site: 'vm-1' });
  const bundles: Record<string, string> = {};
  const exportTo = async (name: string, args: string[] = []) => {
    const r = (await w.exportTo(w.path(name), args)).json as { bundle: { id: string } };
    bundles[name] = r.bundle.id;
  };
  fs.mkdirSync(w.path('truststick'));
  fs.cpSync(keys.trust, w.path('truststick', 'trust'), { recursive: true });
  makeVfatStick(stick('trust'), w.path('truststick'), 'TRUST');
  await w.addImage('debian', '13.1', 3 * MiB + 5);
  await exportTo('good');
  makeVfatStick(stick('good'), w.path('good'), 'BUNDLE');
  await w.addImage('two-sticks', '1.0', 5 * MiB);
  await exportTo('two-a', ['--to', w.path('two-b'), '--media-size', '3M']);
  makeExfatStick(stick('two-a'), w.path('two-a'), 'TWOA');
  makeExt4Stick(stick('two-b'), w.path('two-b'), 'twob');
  await w.addImage('from-iso', '1.0', 2 * MiB);
  await exportTo('iso');
  makeIsoStick(stick('iso'), w.path('iso'), 'ECLUSE_ISO');
  await w.addImage('hostile', '1.0', 1 * MiB);
  await exportTo('hostile-src');
  copyMedia(w.path('hostile-src'), w.path('hostile'));
  bundles.hostile = bundles['hostile-src'] as string;
  flipByte(bundleOn(w.path('hostile')).volume(1), 4096);
  makeExt4Stick(stick('hostile'), w.path('hostile'), 'hostile');
  makeBlankStick(stick('blank'));
  await w.addImage('pulled', '1.0', PULLED);
  await exportTo('pulled');
  makeExt4Stick(stick('pulled'), w.path('pulled'), 'pulled');
  fs.mkdirSync(w.path('debstick'));
  fs.copyFileSync(deb, w.path('debstick', path.basename(deb)));
  makeExt4Stick(stick('deb'), w.path('debstick'), 'ecluse-deb');
  // Self-update: each version an ecluse-package artifact in its own bundle for vm-1; the rogue one on a plain stick.
  const addPackage = (file: string) =>
    ecluseOk(['relay', 'add', file, '--type', 'ecluse-package', '--json'], { home: w.outside });
  repackDeb(deb, w.path('next.deb'), NEXT, false);
  await addPackage(w.path('next.deb'));
  await exportTo('upd-next');
  makeExt4Stick(stick('upd-next'), w.path('upd-next'), 'updnext');
  repackDeb(deb, w.path('broken.deb'), BROKEN, true);
  await addPackage(w.path('broken.deb'));
  await exportTo('upd-broken');
  makeExt4Stick(stick('upd-broken'), w.path('upd-broken'), 'updbroken');
  fs.mkdirSync(w.path('rogue'));
  repackDeb(deb, w.path('rogue', 'rogue.deb'), ROGUE, false);
  makeExt4Stick(stick('rogue'), w.path('rogue'), 'rogue');
  return { world: w, bundles, stick };
}
