/**
 * The real OpenStack clients against the embedded Glance API: `openstack image list|show|save` (openstacksdk,
 * no-auth) and `glance image-list` (glanceclient: discovery, schema, list).
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { glanceFixture, type GlanceFixture } from '../../helpers/glance-fixture.js';

const run = promisify(execFile);

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir !== '' && fs.existsSync(path.join(dir, cmd)));
}

const HAVE_OPENSTACK = onPath('openstack');
if (!HAVE_OPENSTACK) {
  console.warn('skipping the real-client tests: `openstack` is not on PATH (apt-get install python3-openstackclient)');
}

/**
 * A clean environment: no OS_* from the developer's shell may redirect the clients, and a HOME of the test's own
 * (glanceclient caches schemas under ~/.glanceclient and reads them back on the next run).
 */
function clientEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('OS_')) env[k] = v;
  env.HOME = home;
  return env;
}

describe.skipIf(!HAVE_OPENSTACK)('real OpenStack clients against the embedded Glance', () => {
  let fx: GlanceFixture;
  let tmp: string;
  let clientHome: string;
  const openstack = async (...args: string[]): Promise<string> => {
    const { stdout } = await run('openstack', ['--os-auth-type', 'none', '--os-endpoint', fx.url, ...args], {
      env: clientEnv(clientHome),
      timeout: 90_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  };

  beforeAll(async () => {
    const specs = [
      {
        name: 'ubuntu-24.04',
        data: crypto.randomBytes(3 * 1024 * 1024 + 17),
        tags: ['lts'],
        properties: {
          ecluse_bundle_id: 'b-2025-0001',
          ecluse_version: '24.04.1',
          ecluse_signers: 'alice,bob',
          ecluse_vendor: 'canonical',
        },
      },
      { name: 'cirros', data: crypto.randomBytes(4096), disk_format: 'qcow2' },
      { name: 'queued-one', data: null },
      // more than one default page (25), so `image list` has to follow `next`
      ...Array.from({ length: 28 }, (_, i) => ({ name: `filler-${String(i).padStart(2, '0')}` })),
    ];
    fx = await glanceFixture(specs);
    tmp = fs.mkdtempSync(path.join(fx.home, 'out-'));
    clientHome = fs.mkdtempSync(path.join(fx.home, 'client-home-'));
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('openstack image list follows next over every page', async () => {
    const list = JSON.parse(await openstack('image', 'list', '-f', 'json')) as {
      ID: string;
      Name: string;
      Status: string;
    }[];
    expect(list).toHaveLength(31);
    expect(new Set(list.map((i) => i.ID)).size).toBe(31);
    expect(list).toContainEqual({ ID: fx.images[0]!.id, Name: 'ubuntu-24.04', Status: 'active' });
    expect(list).toContainEqual({ ID: fx.images[2]!.id, Name: 'queued-one', Status: 'queued' });
  });

  it('openstack image show NAME finds the image by name and shows its properties', async () => {
    const row = fx.images[0]!;
    const shown = JSON.parse(await openstack('image', 'show', 'ubuntu-24.04', '-f', 'json')) as Record<string, unknown>;
    expect(shown).toMatchObject({
      id: row.id,
      name: 'ubuntu-24.04',
      status: 'active',
      checksum: row.checksum,
      size: row.size,
      disk_format: 'raw',
      container_format: 'bare',
      visibility: 'shared',
      protected: false,
      tags: ['lts'],
    });
    expect(shown.properties).toMatchObject({
      ecluse_bundle_id: 'b-2025-0001',
      ecluse_version: '24.04.1',
      ecluse_signers: 'alice,bob',
      ecluse_vendor: 'canonical',
      os_hash_algo: 'sha512',
      os_hash_value: row.os_hash_value,
    });
    const byId = JSON.parse(await openstack('image', 'show', row.id, '-f', 'json')) as Record<string, unknown>;
    expect(byId.name).toBe('ubuntu-24.04');
  });

  it('openstack image save downloads the exact bytes', async () => {
    for (const name of ['ubuntu-24.04', 'cirros']) {
      const row = fx.images.find((i) => i.name === name)!;
      const out = path.join(tmp, `${name}.img`);
      await openstack('image', 'save', '--file', out, name);
      expect(fs.readFileSync(out).equals(fx.data.get(row.id)!), name).toBe(true);
    }
  });

  it('openstack image show of an unknown name fails cleanly', async () => {
    await expect(openstack('image', 'show', 'no-such-image', '-f', 'json')).rejects.toMatchObject({
      stderr: expect.stringMatching(/No Image found for no-such-image/i) as unknown,
    });
  });

  it('glance image-list (discovery, schema, list), again with the schema it cached', async () => {
    // The second run reads ~/.glanceclient/image_schema.json back and builds CLI options from it.
    for (const round of [1, 2]) {
      const { stdout } = await run('glance', ['--os-image-url', fx.url, '--os-auth-token', 'x', 'image-list'], {
        env: clientEnv(clientHome),
        timeout: 90_000,
      });
      for (const row of fx.images) {
        expect(stdout, `round ${round}`).toContain(row.id);
        expect(stdout, `round ${round}`).toContain(row.name!);
      }
    }
    expect(fs.existsSync(path.join(clientHome, '.glanceclient', 'image_schema.json'))).toBe(true);
  });
});
