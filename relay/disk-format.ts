/**
 * Detects an image's disk format from its magic bytes when the operator does not give one: qcow2 (`QFI\xfb`), VMDK
 * (`KDMV`), VHDX (`vhdxfile`), VDI, ISO 9660 (`CD001` at 0x8001); anything else is raw.
 */
import fs from 'node:fs';
import { assertReadableFile, unreadableFile } from '../sneakernet/input-file.js';

export async function sniffDiskFormat(file: string): Promise<string> {
  await assertReadableFile(file, 'image file');
  let fd: fs.promises.FileHandle;
  try {
    fd = await fs.promises.open(file, 'r');
  } catch (e) {
    throw unreadableFile(file, e, 'image file');
  }
  try {
    const head = Buffer.alloc(0x8006);
    const { bytesRead } = await fd.read(head, 0, head.length, 0);
    const at = (offset: number, magic: string) =>
      bytesRead >= offset + magic.length && head.subarray(offset, offset + magic.length).toString('latin1') === magic;
    if (at(0, 'QFI\xfb')) return 'qcow2';
    if (at(0, 'KDMV')) return 'vmdk';
    if (at(0, 'vhdxfile')) return 'vhdx';
    if (at(0x40, '\x7f\x10\xda\xbe')) return 'vdi';
    if (at(0x8001, 'CD001')) return 'iso';
    return 'raw';
  } finally {
    await fd.close();
  }
}
