/**
 * The outside-Glance feed behind a real Keystone (Debian's package, on loopback): `relay feed add --kind glance
 * --keystone` with an application credential made by the real `openstack` client, the image endpoint found in the
 * Keystone catalog (the feed names no endpoint), a token renewed before it expires, a wrong secret refused by Keystone,
 * and a region without an image endpoint said so.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runClient, startEcluseServe, type Peer } from '../conformance/peers.js';
import { ecluse, ecluseOk, world, type World } from '../helpers/world.js';
import { haveKeystone, startKeystone, type KeystonePeer } from '../helpers/keystone.js';
import { glanceFeedAddArgs, publish } from '../relay/glance-fixtures.js';

if (!haveKeystone())
  console.warn('glance feed through Keystone: skipped, keystone is not installed (scripts/install-deps.sh)');

describe.skipIf(!haveKeystone())('glance feed through Keystone', () => {
  let w: World;
  let staging: Peer;
  let keystone: KeystonePeer;
  let credentialId: string;

  const feedAdd = (name: string, args: string[]) =>
    ecluseOk(
      glanceFeedAddArgs(name, 'vendor-os', [
        ...['--keystone', keystone.url, '--app-credential-id', credentialId],
        ...['--match-name', 'vendor-os-*', '--allow-unsigned', ...args],
      ]),
      { home: w.outside },
    );

  beforeAll(async () => {
    w = await world();
    staging = await startEcluseServe(await w.newInside('staging'));
    // Tokens of 60 s: always within the 5 minutes before expiry in which the feed asks for a new one.
    keystone = await startKeystone(w.path('keystone'), 60);
    const env = keystone.adminEnv;
    await runClient('openstack', ['service', 'create', '--name', 'glance', 'image'], env);
    await runClient('openstack', ['endpoint', 'create', '--region', 'RegionOne', 'image', 'public', staging.url], env);
    const cred = JSON.parse(
      await runClient('openstack', ['application', 'credential', 'create', 'ecluse-feed', '-f', 'json'], env),
    ) as { id: string; secret: string };
    credentialId = cred.id;
    fs.writeFileSync(w.path('feed.secret'), `${cred.secret}\n`, { mode: 0o600 });
  }, 240_000);
  afterAll(async () => {
    await keystone?.stop();
    await staging?.stop();
    w?.cleanup();
  });

  it('authenticates with the application credential, takes Glance from the catalog, renews the token', async () => {
    const one = crypto.randomBytes(100_000);
    const two = crypto.randomBytes(120_000);
    await publish(staging.url, { name: 'vendor-os-1.0', data: one, properties: { version: '1.0' } });
    await publish(staging.url, { name: 'vendor-os-1.1', data: two, properties: { version: '1.1' } });
    const added = (await feedAdd('staging', ['--app-credential-secret-file', w.path('feed.secret')])).json as {
      feed: { config: { keystone?: { applicationCredentialSecretFile?: string } } };
    };
    expect(JSON.stringify(added)).not.toContain(fs.readFileSync(w.path('feed.secret'), 'utf8').trim());
    const listed = (await ecluseOk(['relay', 'feed', 'list'], { home: w.outside })).stdout;
    expect(listed).toContain(`the image endpoint in the catalog of ${keystone.url}`);

    const tokensBefore = (keystone.log().match(/"POST \/v3\/auth\/tokens HTTP\/1\.1" 201/g) ?? []).length;
    const r = (await ecluseOk(['relay', 'fetch', '--json'], { home: w.outside })).json as {
      fetched: Array<{ version: string; sha256: string }>;
    };
    expect(r.fetched.map((f) => f.version).sort()).toEqual(['1.0', '1.1']);
    const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
    expect(r.fetched.map((f) => f.sha256).sort()).toEqual([sha(one), sha(two)].sort());
    // One token to list, then a new one before each image (each was within 5 minutes of expiring).
    const tokens = (keystone.log().match(/"POST \/v3\/auth\/tokens HTTP\/1\.1" 201/g) ?? []).length - tokensBefore;
    expect(tokens).toBe(3);
  }, 120_000);

  it('a wrong secret is refused by Keystone (E_FEED, naming the credential)', async () => {
    await feedAdd('wrong-secret', ['--app-credential-secret-env', 'STAGING_SECRET']);
    const r = await ecluse(['relay', 'fetch', '--feed', 'wrong-secret', '--json'], {
      home: w.outside,
      env: { STAGING_SECRET: 'not the secret' },
    });
    expect(r.code).toBe(3); // E_FEED: the feed could not be read (an operational failure, not a vendor refusal)
    expect(r.json).toMatchObject({ ok: false, code: 'E_FEED' });
    expect((r.json as { message: string }).message).toContain(
      `HTTP 401: the application credential ${credentialId} was refused`,
    );
    expect(keystone.log()).toMatch(/"POST \/v3\/auth\/tokens HTTP\/1\.1" 401/);
  }, 60_000);

  it('a region whose catalog has no image endpoint is said so', async () => {
    await feedAdd('elsewhere', ['--app-credential-secret-file', w.path('feed.secret'), '--region', 'Nowhere']);
    const r = await ecluse(['relay', 'fetch', '--feed', 'elsewhere', '--json'], { home: w.outside });
    expect(r.json).toMatchObject({ ok: false, code: 'E_FEED' });
    expect((r.json as { message: string }).message).toContain('names no public image endpoint in region Nowhere');
  }, 60_000);
});
