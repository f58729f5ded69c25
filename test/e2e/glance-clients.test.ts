/**
 * The real OpenStack clients against `ecluse serve`, for the write side and tokens: `openstack image
 * create|list|show|set|add project|save|delete`, `glance image-list|image-show|image-download`, a short openstacksdk
 * script, and a reader token (`ecluse token create`) through keystoneauth's admin_token plugin.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientEnv, runClient, startEcluseServe, type Peer } from '../conformance/peers.js';
import { ecluseOk, md5, sha256, world, type World } from '../helpers/world.js';

let w: World;
let serve: Peer;
let clientHome: string;
const DATA = crypto.randomBytes(2 * 1024 * 1024 + 11);

const openstack = (...args: string[]): Promise<string> =>
  runClient('openstack', ['--os-auth-type', 'none', '--os-endpoint', serve.url, ...args], clientEnv(clientHome));

const glance = (...args: string[]): Promise<string> =>
  runClient('glance', ['--os-image-url', serve.url, '--os-auth-token', 'x', ...args], clientEnv(clientHome));

beforeAll(async () => {
  w = await world();
  serve = await startEcluseServe(w.inside);
  clientHome = w.path('client-home');
  fs.mkdirSync(clientHome);
  fs.writeFileSync(w.path('disk.raw'), DATA);
}, 120_000);

afterAll(async () => {
  await serve?.stop();
  w?.cleanup();
});

describe('openstack, glance and openstacksdk against ecluse serve (write side)', () => {
  let id: string;

  it('openstack image create --file uploads; list and show see it active with the right checksum', async () => {
    const created = JSON.parse(
      await openstack(
        'image',
        'create',
        '--file',
        w.path('disk.raw'),
        '--disk-format',
        'raw',
        '--container-format',
        'bare',
        '--property',
        'os_distro=debian',
        'client-made',
        '-f',
        'json',
      ),
    ) as Record<string, unknown>;
    id = created.id as string;
    // openstackclient prints the record of the create (queued), as with the real Glance
    expect(created).toMatchObject({ name: 'client-made', disk_format: 'raw' });
    const list = JSON.parse(await openstack('image', 'list', '-f', 'json')) as { ID: string; Name: string }[];
    expect(list.map((i) => i.Name)).toContain('client-made');
    const show = JSON.parse(await openstack('image', 'show', 'client-made', '-f', 'json')) as Record<string, unknown>;
    expect(show).toMatchObject({ id, status: 'active', checksum: md5(DATA), size: DATA.length });
  });

  it('openstack image set and add project', async () => {
    await openstack('image', 'set', '--property', 'color=teal', '--tag', 'gold', '--min-ram', '256', 'client-made');
    const show = JSON.parse(await openstack('image', 'show', id, '-f', 'json')) as Record<string, unknown>;
    expect(show.min_ram).toBe(256);
    expect(show.tags).toEqual(['gold']);
    expect(JSON.stringify(show.properties)).toContain('teal');
    const member = JSON.parse(await openstack('image', 'add', 'project', id, 'project-blue', '-f', 'json')) as Record<
      string,
      unknown
    >;
    expect(JSON.stringify(member)).toContain('project-blue');
    const members = JSON.parse(await openstack('image', 'member', 'list', id, '-f', 'json')) as Record<
      string,
      string
    >[];
    expect(members.map((m) => m['Member ID'])).toEqual(['project-blue']);
  });

  it('openstack image save and glance image-list/image-show/image-download give the same bytes', async () => {
    await openstack('image', 'save', '--file', w.path('saved.raw'), 'client-made');
    expect(sha256(fs.readFileSync(w.path('saved.raw')))).toBe(sha256(DATA));
    expect(await glance('image-list')).toContain('client-made');
    const show = await glance('image-show', id);
    expect(show).toContain(md5(DATA));
    await glance('image-download', '--file', w.path('glance.raw'), id);
    expect(sha256(fs.readFileSync(w.path('glance.raw')))).toBe(sha256(DATA));
  });

  it('an openstacksdk script creates, uploads, lists, downloads and deletes', async () => {
    const script = `
import hashlib, sys, openstack
conn = openstack.connect(auth_type='none', auth={'endpoint': sys.argv[1]}, image_api_version='2')
data = b'sdk bytes ' * 1000
img = conn.image.create_image(name='sdk-made', data=data, disk_format='raw', container_format='bare', allow_duplicates=True)
img = conn.image.get_image(img.id)
assert img.status == 'active', img.status
names = [i.name for i in conn.image.images()]
got = conn.image.download_image(img)
body = got.content if hasattr(got, 'content') else got
assert hashlib.md5(body).hexdigest() == img.checksum == hashlib.md5(data).hexdigest(), 'checksum'
conn.image.delete_image(img)
print('ok', 'sdk-made' in names, conn.image.find_image('sdk-made') is None)
`;
    // Debian's python3 (python3-openstacksdk), not whatever python3 comes first on PATH
    const stdout = await runClient('/usr/bin/python3', ['-c', script, serve.url], clientEnv(clientHome));
    expect(stdout.trim()).toBe('ok True True');
  });

  it('a reader token reads but cannot delete; openstack image delete (no-auth, loopback) deletes', async () => {
    const made = await ecluseOk(['token', 'create', '--role', 'reader', '--name', 'e2e', '--json'], { home: w.inside });
    const token = (made.json as { token: string }).token;
    // glanceclient sends --os-auth-token as X-Auth-Token
    const asReader = (...args: string[]) =>
      runClient('glance', ['--os-image-url', serve.url, '--os-auth-token', token, ...args], clientEnv(clientHome));
    expect(await asReader('image-list')).toContain('client-made');
    await expect(asReader('image-delete', id)).rejects.toThrow(/not permitted to delete/);
    const tokens = (await ecluseOk(['token', 'list', '--json'], { home: w.inside })).json as {
      tokens: { id: string; role: string }[];
    };
    const id0 = (made.json as { id: string }).id;
    expect(tokens.tokens).toEqual([
      expect.objectContaining({ id: id0, role: 'reader', name: 'e2e', revoked_at: null }),
    ]);
    expect(JSON.stringify(tokens)).not.toContain(token);
    await ecluseOk(['token', 'revoke', id0], { home: w.inside });
    await openstack('image', 'delete', 'client-made');
    const list = JSON.parse(await openstack('image', 'list', '-f', 'json')) as { Name: string }[];
    expect(list.map((i) => i.Name)).not.toContain('client-made');
    expect(fs.existsSync(w.path('inside', 'store', 'images', id))).toBe(false);
  });
});

/** An address of this machine that is not loopback (a client connecting to it is not a loopback client). */
const OUTSIDE = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
if (!OUTSIDE) console.warn('no non-loopback IPv4 address: the beyond-loopback token test is skipped');

describe.skipIf(!OUTSIDE)('ecluse serve beyond loopback', () => {
  let outside: Peer;
  let reader: string;
  let admin: string;

  beforeAll(async () => {
    outside = await startEcluseServe(w.inside, {}, OUTSIDE);
    reader = (
      (await ecluseOk(['token', 'create', '--role', 'reader', '--json'], { home: w.inside })).json as { token: string }
    ).token;
    admin = (
      (await ecluseOk(['token', 'create', '--role', 'admin', '--json'], { home: w.inside })).json as { token: string }
    ).token;
  }, 60_000);
  afterAll(async () => {
    await outside?.stop();
  });

  it('401 without a token (also with a placeholder one), reads with a reader token, writes only with an admin token', async () => {
    const get = (token?: string) =>
      fetch(`${outside.url}/v2/images`, {
        headers: { Accept: 'application/json', ...(token ? { 'X-Auth-Token': token } : {}) },
      });
    const anonymous = await get();
    expect(anonymous.status).toBe(401);
    expect(((await anonymous.json()) as { code: string }).code).toBe('401 Unauthorized');
    expect((await get('notused')).status).toBe(401);
    expect((await get(reader)).status).toBe(200);
    const create = (token: string) =>
      fetch(`${outside.url}/v2/images`, {
        method: 'POST',
        headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'X-Auth-Token': token },
        body: JSON.stringify({ name: 'from-outside' }),
      });
    expect((await create(reader)).status).toBe(403);
    expect((await create(admin)).status).toBe(201);
    // glanceclient with a token from beyond loopback
    expect(
      await runClient(
        'glance',
        ['--os-image-url', outside.url, '--os-auth-token', reader, 'image-list'],
        clientEnv(clientHome),
      ),
    ).toContain('from-outside');
    await expect(
      runClient('glance', ['--os-image-url', outside.url, '--os-auth-token', 'x', 'image-list'], clientEnv(clientHome)),
    ).rejects.toThrow(/401|Unauthorized|authorized/i);
  });
});
