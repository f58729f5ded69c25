/**
 * The real OpenStack client against `ecluse serve`, after a real import: `image list`, `image show` and `image save`
 * must work unchanged and give back exactly the bytes that were exported. CI installs python3-openstackclient; when
 * it is missing this suite fails (it does not skip).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, md5, PASSPHRASE, sha256, sha512, world, type AddedImage, type World } from '../helpers/world.js';

const execFileP = promisify(execFile);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(url: string, child: ChildProcess, log: () => string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`ecluse serve exited ${child.exitCode}: ${log()}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`ecluse serve did not answer on ${url} within ${ms} ms: ${log()}`);
}

async function openstackOnPath(): Promise<boolean> {
  try {
    await execFileP('openstack', ['--version']);
    return true;
  } catch {
    return false;
  }
}

describe('the real openstack client against ecluse serve', () => {
  let w: World;
  let img: AddedImage;
  let url: string;
  let server: ChildProcess | undefined;
  let serverLog = '';

  async function openstack(...args: string[]): Promise<string> {
    const { stdout } = await execFileP('openstack', ['--os-auth-type', 'none', '--os-endpoint', url, ...args], {
      maxBuffer: 64 * 1024 * 1024,
      timeout: 60_000,
    });
    return stdout;
  }

  beforeAll(async () => {
    if (!(await openstackOnPath())) {
      throw new Error(
        'the `openstack` client is not on PATH: install python3-openstackclient (CI does); this suite does not skip',
      );
    }
    w = await world();
    img = await w.addImage('cirros-e2e', '0.6.3', 1536 * 1024 + 7);
    await w.exportTo(w.path('media'), ['--media-size', '1M']);
    const r = await w.importJson(w.path('media'));
    if (r.code !== 0) throw new Error(`import failed: ${r.stderr}`);

    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    server = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`], {
      env: { ...process.env, ECLUSE_HOME: w.inside, ECLUSE_PASSPHRASE: PASSPHRASE },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout?.on('data', (d: Buffer) => (serverLog += d.toString()));
    server.stderr?.on('data', (d: Buffer) => (serverLog += d.toString()));
    await waitFor(`${url}/versions`, server, () => serverLog);
  });

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
      if (server.exitCode === null) server.kill('SIGKILL');
    }
    w?.cleanup();
  });

  it('image list shows the imported image', async () => {
    const list = JSON.parse(await openstack('image', 'list', '-f', 'json')) as Array<{
      ID: string;
      Name: string;
      Status: string;
    }>;
    expect(list).toEqual([expect.objectContaining({ Name: 'cirros-e2e', Status: 'active' })]);
  });

  it('image show gives the checksum, the sha512 and the size of the exported bytes', async () => {
    const show = JSON.parse(await openstack('image', 'show', 'cirros-e2e', '-f', 'json')) as Record<string, unknown>;
    expect(show).toMatchObject({
      name: 'cirros-e2e',
      status: 'active',
      checksum: md5(img.bytes),
      size: img.bytes.length,
      disk_format: 'raw',
      container_format: 'bare',
    });
    // openstackclient lists the fields it does not know by name (os_hash_*) under "properties".
    const props = (show.properties ?? {}) as Record<string, unknown>;
    expect(show.os_hash_algo ?? props.os_hash_algo).toBe('sha512');
    expect(show.os_hash_value ?? props.os_hash_value).toBe(sha512(img.bytes));
  });

  it('image save downloads exactly the exported bytes', async () => {
    const file = w.path('saved.raw');
    await openstack('image', 'save', '--file', file, 'cirros-e2e');
    const saved = fs.readFileSync(file);
    expect(saved.length).toBe(img.bytes.length);
    expect(sha256(saved)).toBe(sha256(img.bytes));
  });
});
