/**
 * What Glance's own import reads from an image's header: the virtual size (the disk the guest sees) of a qcow2 image,
 * from its header (`QFI\xfb`, version 2 or 3, the big-endian 64-bit size at offset 24). The bytes were verified
 * against the signed digests before this runs, but a vendor's header is still read strictly: anything odd gives
 * null (Glance's "Not available"), never a guess.
 */
import fs from 'node:fs';

const QCOW2_MAGIC = 0x514649fb;
/** Larger than any disk Glance accepts (and exact in a JS number). */
const MAX_VIRTUAL_SIZE = 2 ** 53 - 1;

export async function virtualSizeOf(file: string, diskFormat: string): Promise<number | null> {
  if (diskFormat !== 'qcow2') return null;
  const fd = await fs.promises.open(file, 'r');
  try {
    const head = Buffer.alloc(32);
    const { bytesRead } = await fd.read(head, 0, head.length, 0);
    if (bytesRead < head.length || head.readUInt32BE(0) !== QCOW2_MAGIC) return null;
    const version = head.readUInt32BE(4);
    if (version !== 2 && version !== 3) return null;
    const size = head.readBigUInt64BE(24);
    if (size === 0n || size > BigInt(MAX_VIRTUAL_SIZE)) return null;
    return Number(size);
  } finally {
    await fd.close();
  }
}
