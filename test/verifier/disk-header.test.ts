/**
 * virtual_size as Glance's import reads it: from the header of real qcow2 files made by qemu-img (compat 0.10 and
 * 1.1 headers); anything that is not a sound qcow2 header gives null, never a guess.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { virtualSizeOf } from '../../verifier/disk-header.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-qcow2-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const qcow2 = (name: string, size: string, compat: string) => {
  const file = path.join(dir, name);
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', `compat=${compat}`, file, size]);
  return file;
};

describe('virtual_size from the qcow2 header', () => {
  it('reads the size qemu-img wrote, for version 2 and 3 headers', async () => {
    expect(await virtualSizeOf(qcow2('v3.qcow2', '1G', '1.1'), 'qcow2', 0)).toBe(1024 ** 3);
    expect(await virtualSizeOf(qcow2('v2.qcow2', '20G', '0.10'), 'qcow2', 0)).toBe(20 * 1024 ** 3);
    const info = JSON.parse(
      execFileSync('qemu-img', ['info', '--output=json', path.join(dir, 'v3.qcow2')]).toString(),
    ) as { 'virtual-size': number };
    expect(await virtualSizeOf(path.join(dir, 'v3.qcow2'), 'qcow2', 0)).toBe(info['virtual-size']);
  });

  it('gives the size for raw, null for other formats, a damaged magic, an unknown version or a short file', async () => {
    const file = qcow2('bad.qcow2', '1G', '1.1');
    expect(await virtualSizeOf(file, 'raw', 1234)).toBe(1234); // raw: its size, as Glance
    expect(await virtualSizeOf(file, 'vmdk', 1234)).toBeNull();
    const bytes = fs.readFileSync(file);
    const wrongMagic = Buffer.from(bytes);
    wrongMagic[0] = 0;
    fs.writeFileSync(path.join(dir, 'magic.qcow2'), wrongMagic);
    expect(await virtualSizeOf(path.join(dir, 'magic.qcow2'), 'qcow2', 0)).toBeNull();
    const wrongVersion = Buffer.from(bytes);
    wrongVersion.writeUInt32BE(9, 4);
    fs.writeFileSync(path.join(dir, 'version.qcow2'), wrongVersion);
    expect(await virtualSizeOf(path.join(dir, 'version.qcow2'), 'qcow2', 0)).toBeNull();
    const huge = Buffer.from(bytes);
    huge.writeBigUInt64BE(2n ** 63n, 24);
    fs.writeFileSync(path.join(dir, 'huge.qcow2'), huge);
    expect(await virtualSizeOf(path.join(dir, 'huge.qcow2'), 'qcow2', 0)).toBeNull();
    fs.writeFileSync(path.join(dir, 'short.qcow2'), bytes.subarray(0, 20));
    expect(await virtualSizeOf(path.join(dir, 'short.qcow2'), 'qcow2', 0)).toBeNull();
  });
});
