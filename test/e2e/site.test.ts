/**
 * The import station's own settings through the real CLI: `site show [--json]` (site id, pinned root, threshold,
 * revocation list, policy, every setting), `site set KEY VALUE` (audited; refused for an unknown key or value, and
 * for the site id), its effect (glance_bundle_images=writable lets the Glance API change a bundle image; the threshold
 * is what an import then requires), and a second `site init` refused with E_ALREADY_INITIALIZED, nothing changed.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditSince,
  ecluse,
  ecluseOk,
  expectFailureOutput,
  expectImportRefused,
  lastAuditSeq,
  snapshot,
  world,
  type World,
} from '../helpers/world.js';

let w: World;
beforeAll(async () => {
  w = await world();
});
afterAll(() => w?.cleanup());

describe('ecluse site show / set', () => {
  it('show: the trust in force and every setting with its default', async () => {
    const r = await ecluseOk(['site', 'show', '--json'], { home: w.inside });
    const trust = JSON.parse(fs.readFileSync(`${w.keys.trust}/trust.json`, 'utf8')) as { rootKeyId: string };
    expect(r.json).toEqual({
      ok: true,
      site: w.site,
      home: w.inside,
      root: {
        version: 1,
        keyId: trust.rootKeyId,
        notAfter: expect.stringMatching(/^20[0-9]{2}-/),
        installedVersion: 1,
        pinnedBy: 'site init',
      },
      threshold: 1,
      revocations: null,
      policy: { source: expect.any(String), digest: expect.stringMatching(/^[0-9a-f]{64}$/) },
      settings: [
        {
          key: 'threshold',
          value: '1',
          default: '1',
          values: 'a whole number from 1 to 16',
          meaning: 'distinct trusted signers a bundle needs (m of n)',
        },
        {
          key: 'glance_bundle_images',
          value: 'read-only',
          default: 'read-only',
          values: 'read-only or writable',
          meaning: 'whether images that came in a bundle may be changed or deleted through the Glance API',
        },
        {
          key: 'registry_anonymous_pulls',
          value: 'loopback',
          default: 'loopback',
          values: 'loopback, anyone or none',
          meaning: expect.stringMatching(/^who may pull from the container registry/),
        },
      ],
    });
    const human = await ecluseOk(['site', 'show'], { home: w.inside });
    expect(human.stdout.split('\n')).toEqual(
      expect.arrayContaining([
        `site ${w.site} (home ${w.inside})`,
        'threshold: 1 distinct trusted signer(s) per bundle',
        'revocation list: none received yet (no signer revoked)',
        'settings (change with "ecluse site set KEY VALUE"):',
        expect.stringMatching(
          /^ {2}glance_bundle_images = read-only +whether images .*; read-only or writable \(default\)$/,
        ),
      ]),
    );
  });

  it('set: audited, shown, and in force (the Glance API then lets a bundle image change)', async () => {
    await w.addImage('img', '1.0.0', 4096);
    await w.exportTo(w.path('m1'));
    const imported = await w.importJson(w.path('m1'));
    expect(imported.code, imported.stderr).toBe(0);
    const id = (imported.json as { images: Array<{ id: string }> }).images[0]?.id as string;

    const serve = async (f: (url: string) => Promise<void>) => {
      const { spawnEcluse } = await import('../helpers/spawned.js');
      const port = 20000 + Math.floor(Math.random() * 20000);
      const s = spawnEcluse(['serve', '--listen', `127.0.0.1:${port}`], w.inside);
      const url = `http://127.0.0.1:${port}`;
      try {
        for (let i = 0; ; i++) {
          const ok = await fetch(`${url}/v2/images`).then(
            (x) => x.ok,
            () => false,
          );
          if (ok) break;
          if (i > 300) throw new Error('serve did not start');
          await new Promise((res) => setTimeout(res, 50));
        }
        await f(url);
      } finally {
        s.child.kill('SIGTERM');
        await s.done;
      }
    };
    const patch = (url: string) =>
      fetch(`${url}/v2/images/${id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/openstack-images-v2.1-json-patch' },
        body: JSON.stringify([{ op: 'add', path: '/site_note', value: 'checked' }]),
      });
    await serve(async (url) => expect((await patch(url)).status).toBe(403));

    const seq = lastAuditSeq(w.inside);
    const r = await ecluseOk(['site', 'set', 'glance_bundle_images', 'writable', '--json'], { home: w.inside });
    expect(r.json).toEqual({ ok: true, key: 'glance_bundle_images', from: 'read-only', to: 'writable', changed: true });
    expect(auditSince(w.inside, seq)).toMatchObject([
      {
        kind: 'site.setting',
        outcome: 'info',
        message: 'site setting glance_bundle_images changed from read-only to writable',
      },
    ]);
    const again = await ecluseOk(['site', 'set', 'glance_bundle_images', 'writable'], { home: w.inside });
    expect(again.stdout.trim()).toBe('site setting glance_bundle_images is already writable: nothing changed');
    expect(auditSince(w.inside, seq)).toHaveLength(1);
    const shown = await ecluseOk(['site', 'show', '--json'], { home: w.inside });
    expect((shown.json as { settings: unknown[] }).settings).toContainEqual(
      expect.objectContaining({ key: 'glance_bundle_images', value: 'writable' }),
    );
    await serve(async (url) => expect((await patch(url)).status).toBe(200));
  });

  it('set threshold 2: the next bundle signed by one signer is refused (E_THRESHOLD)', async () => {
    const home = await w.newInside('threshold');
    await ecluseOk(['site', 'set', 'threshold', '2'], { home });
    expect(((await ecluseOk(['site', 'show', '--json'], { home })).json as { threshold: number }).threshold).toBe(2);
    // Signed by alice alone (the signatures are checked before the sequence: this home never saw bundle 1).
    await w.addImage('other', '1', 2048);
    const media = w.path('m-threshold');
    await w.exportTo(media);
    await expectImportRefused(w, media, 'E_THRESHOLD', home);
  });

  it.each([
    [
      ['site', 'set', 'colour', 'blue'],
      '"colour" is not a site setting: the settings are threshold, glance_bundle_images, registry_anonymous_pulls (see "ecluse site show")',
    ],
    [['site', 'set', 'threshold', '17'], 'threshold takes a whole number from 1 to 16, not "17"'],
    [['site', 'set', 'glance_bundle_images', 'yes'], 'glance_bundle_images takes read-only or writable, not "yes"'],
    [
      ['site', 'set', 'site_id', 'x'],
      'the site id is fixed at "ecluse site init"; to serve another site, set up another --home',
    ],
  ])('set refuses %j (E_USAGE, exit 2, nothing changed)', async (args, message) => {
    const before = snapshot(w.inside);
    const seq = lastAuditSeq(w.inside);
    const r = await ecluse([...args, '--json'], { home: w.inside });
    expect(r.code).toBe(2);
    expect(expectFailureOutput(r, 'E_USAGE').message).toBe(message);
    expect(snapshot(w.inside)).toEqual(before);
    expect(lastAuditSeq(w.inside)).toBe(seq);
  });
});

describe('a second site init', () => {
  it('is E_ALREADY_INITIALIZED (exit 3), nothing changed', async () => {
    const before = snapshot(w.inside);
    const seq = lastAuditSeq(w.inside);
    const trust = fs.readFileSync(`${w.inside}/trust/trust.json`);
    const r = await ecluse(['site', 'init', '--trust', w.keys.trust, '--site', 'another', '--json'], {
      home: w.inside,
    });
    expect(r.code).toBe(3);
    const line = `${w.inside} is already the import station of site ${w.site}; nothing was changed (see "ecluse site show"; to set up another site, give another --home)`;
    expect(expectFailureOutput(r, 'E_ALREADY_INITIALIZED').message).toBe(line);
    expect(r.stderr.trimEnd().split('\n').pop()).toBe(`E_ALREADY_INITIALIZED: ${line}`);
    expect(snapshot(w.inside)).toEqual(before);
    expect(lastAuditSeq(w.inside)).toBe(seq);
    expect(fs.readFileSync(`${w.inside}/trust/trust.json`)).toEqual(trust);
  });
});
