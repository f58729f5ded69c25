/**
 * The daemon hands écluse's own package over as `ecluse import` does (docs/FORMAT.md 4.10): the real daemon, spawned
 * with `--inbox` (no mounts, no root needed) and `--update-spool`, imports a bundle carrying an image and the package,
 * logs `update.handed-over`, and the evidence and the package are in the spool.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { debSkip, tinyDeb, PACKAGE_POLICY } from '../../helpers/deb.js';
import { startDaemon, type DaemonProcess } from '../../helpers/media.js';
import { auditSince, bundleOn, ecluseOk, sha256, world, type World } from '../../helpers/world.js';

describe.skipIf(debSkip !== null)('ecluse daemon --update-spool', () => {
  let w: World | null = null;
  let daemon: DaemonProcess | null = null;
  afterAll(async () => {
    await daemon?.stop();
    w?.cleanup();
  });

  it('hands the package over with the images of the bundle, and logs it', async () => {
    w = await world();
    fs.writeFileSync(w.path('policy.yaml'), PACKAGE_POLICY);
    await ecluseOk(['policy', 'apply', w.path('policy.yaml'), '--json'], { home: w.inside });
    await w.addImage('debian', '13.2', 100_000);
    const deb = tinyDeb(w.root, { version: '0.5.0' });
    const sum = sha256(fs.readFileSync(deb));
    await ecluseOk(['relay', 'add', deb, '--type', 'ecluse-package', '--json'], { home: w.outside });
    const stick = w.path('stick');
    await w.exportTo(stick);

    const mediaRoot = w.path('run-media');
    const inbox = w.path('inbox');
    const spool = w.path('spool');
    for (const d of [mediaRoot, inbox, spool]) fs.mkdirSync(d);
    daemon = startDaemon(w, mediaRoot, { extra: ['--inbox', inbox, '--update-spool', spool] });
    await daemon.waitFor((e) => e.event === 'inbox.watching', 'the inbox watched');
    const b = bundleOn(stick);
    fs.cpSync(b.root, path.join(inbox, 'ecluse', 'bundles', b.id), { recursive: true });
    fs.writeFileSync(path.join(inbox, 'ecluse', 'bundles', `${b.id}.complete`), '');
    const done = await daemon.waitFor((e) => e.event === 'inbox.done' || e.event === 'inbox.refused', 'handled');
    expect(done).toMatchObject({ event: 'inbox.done', bundle: b.id });
    expect(daemon.events.find((e) => e.event === 'update.handed-over')).toMatchObject({
      bundle: b.id,
      artifact: 'ecluse@0.5.0',
    });
    expect(daemon.events.find((e) => e.event === 'import.accepted')?.message).toContain(
      'ecluse 0.5.0 for the installer',
    );
    expect(fs.readdirSync(spool).sort()).toEqual([`${sum}.bundle`, `${sum}.deb`]);
    expect(fs.readFileSync(path.join(spool, `${sum}.deb`)).equals(fs.readFileSync(deb))).toBe(true);
    expect(auditSince(w.inside).filter((a) => a.kind === 'update.handed-over')).toHaveLength(1);
    expect(await daemon.stop()).toBe(0);
    daemon = null;
  });
});
