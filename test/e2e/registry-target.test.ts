/**
 * `ecluse target add registry URL [--authfile F] [--insecure-registry]` through the CLI: the registry's entry of a
 * containers auth file copied (the password never printed), listed beside Glance targets with their kind, plain
 * HTTP refused beyond loopback unless asked for, options of the other kind refused, one name space for both kinds,
 * and the operator told what to do in one line each time.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { containersAuthFile } from '../helpers/oci/tools.js';
import { auditSince, ecluse, ecluseOk, expectFailureOutput, world, type World } from '../helpers/world.js';

let w: World;
let authFile: string;

beforeAll(async () => {
  w = await world();
  authFile = w.path('auth.json');
  fs.writeFileSync(
    authFile,
    containersAuthFile({
      '127.0.0.1:5999': { username: 'pusher', password: 'very-secret' },
      'registry.site.example': { username: 'site', password: 'other-secret' },
    }),
  );
});
afterAll(() => w?.cleanup());

describe('target add registry', () => {
  it('copies the credentials of the auth file for that registry, never prints them, audits, lists with the kind', async () => {
    const r = await ecluseOk(
      ['target', 'add', 'registry', 'http://127.0.0.1:5999/', '--authfile', authFile, '--json'],
      {
        home: w.inside,
      },
    );
    expect(r.json).toEqual({
      ok: true,
      target: {
        name: 'registry',
        kind: 'registry',
        url: 'http://127.0.0.1:5999',
        auth: { type: 'credentials', username: 'pusher', from: authFile },
      },
    });
    expect(r.stdout).not.toContain('very-secret');
    await ecluseOk(['target', 'add', 'glance', 'http://127.0.0.1:9292', '--name', 'lab'], { home: w.inside });
    const list = await ecluseOk(['target', 'list', '--json'], { home: w.inside });
    expect(list.stdout).not.toContain('very-secret');
    expect((list.json as { targets: { name: string; kind: string }[] }).targets).toEqual([
      expect.objectContaining({ name: 'lab', kind: 'glance' }),
      expect.objectContaining({ name: 'registry', kind: 'registry', pushes: [] }),
    ]);
    const human = await ecluseOk(['target', 'list'], { home: w.inside });
    expect(human.stdout).toContain('registry  registry  http://127.0.0.1:5999  (credentials)');
    const added = auditSince(w.inside).filter((a) => a.kind === 'target.added');
    expect(added.map((a) => a.message)).toContain(
      'registry target registry added: http://127.0.0.1:5999 (credentials of pusher)',
    );
    expect(JSON.stringify(added)).not.toContain('very-secret');
  });

  it('a repository prefix in the URL, https, the entry of that host', async () => {
    const r = await ecluseOk(
      [
        'target',
        'add',
        'registry',
        'https://registry.site.example/mirror/vendor',
        '--name',
        'site',
        '--authfile',
        authFile,
        '--json',
      ],
      { home: w.inside },
    );
    expect(r.json).toMatchObject({
      target: { url: 'https://registry.site.example/mirror/vendor', auth: { username: 'site' } },
    });
  });

  it('refuses, in one line each, what would go wrong later', async () => {
    const cases: { args: string[]; code: string; exit: number; says: string }[] = [
      {
        args: ['http://registry.site.example:5000', '--name', 'plain'],
        code: 'E_USAGE',
        exit: 2,
        says: 'registry.site.example:5000 would be pushed to over plain HTTP: use https://, or add --insecure-registry',
      },
      {
        args: ['https://registry.site.example', '--name', 'x', '--auth', 'password'],
        code: 'E_USAGE',
        exit: 2,
        says: '--auth is for Glance targets: a registry target takes --authfile',
      },
      {
        args: ['https://other.example', '--name', 'x', '--authfile', authFile],
        code: 'E_INPUT',
        exit: 3,
        says: `${authFile} holds no credentials for other.example: log in first ("podman login --authfile ${authFile} other.example")`,
      },
      {
        args: ['https://registry.site.example/Upper', '--name', 'x'],
        code: 'E_USAGE',
        exit: 2,
        says: '"Upper" is not a repository prefix',
      },
      {
        args: ['https://u:p@registry.site.example', '--name', 'x'],
        code: 'E_USAGE',
        exit: 2,
        says: 'give credentials with --authfile',
      },
      {
        args: ['https://registry.site.example', '--name', 'lab'],
        code: 'E_USAGE',
        exit: 2,
        says: 'a target named lab exists already (ecluse target remove lab)',
      },
      {
        args: ['https://registry.site.example', '--name', 'x', '--authfile', w.path('missing.json')],
        code: 'E_NOT_FOUND',
        exit: 3,
        says: `no such auth file: ${w.path('missing.json')}`,
      },
    ];
    for (const c of cases) {
      const r = await ecluse(['target', 'add', 'registry', ...c.args, '--json'], { home: w.inside });
      expect({ args: c.args, exit: r.code }).toEqual({ args: c.args, exit: c.exit });
      expect(expectFailureOutput(r, c.code).message).toContain(c.says);
    }
    const glance = await ecluse(
      ['target', 'add', 'glance', 'http://127.0.0.1:9292', '--name', 'g2', '--insecure-registry', '--json'],
      {
        home: w.inside,
      },
    );
    expect(glance.code).toBe(2);
    expect(expectFailureOutput(glance, 'E_USAGE').message).toContain('--insecure-registry is for registry targets');
    const ok = await ecluseOk(
      [
        'target',
        'add',
        'registry',
        'http://registry.site.example:5000',
        '--name',
        'plain',
        '--insecure-registry',
        '--json',
      ],
      { home: w.inside },
    );
    expect(ok.json).toMatchObject({ target: { name: 'plain', auth: { type: 'none' } } });
  });

  it('push of an image the registry store does not hold, and remove', async () => {
    const push = await ecluse(['target', 'push', '--image', 'acme/none:1.0', '--json'], { home: w.inside });
    expect(push.code).toBe(3);
    expect(expectFailureOutput(push, 'E_NOT_FOUND').message).toContain(
      'no container image acme/none:1.0 in the registry store',
    );
    await ecluseOk(['target', 'remove', 'plain'], { home: w.inside });
    expect(auditSince(w.inside).some((a) => a.message === 'registry target plain removed')).toBe(true);
    const gone = await ecluse(['target', 'remove', 'plain', '--json'], { home: w.inside });
    expect(expectFailureOutput(gone, 'E_NOT_FOUND').message).toBe('no target named plain (see "ecluse target list")');
  });
});
