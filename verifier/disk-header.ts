/**
 * What Glance's own import reads from an image: the virtual size (the disk the guest sees). Raw: its size. qcow2:
 * the header's (`QFI\xfb`, version 2 or 3, the big-endian 64-bit size at offset 24). Other formats: null (Glance's
 * "Not available"). One rule for images uploaded through the API and images imported from bundles. The bytes were
 * verified before this runs, but a vendor's header is still read strictly: anything odd gives null, never a guess.
 */
import fs from 'node:fs';

const QCOW2_MAGIC = 0x514649fb;
/** Larger than any disk Glance accepts (and exact in a JS number). */
const MAX_VIRTUAL_SIZE = 2 ** 53 - 1;
/** How much of the file's start the rule needs. */
export const HEADER_BYTES = 32;

/** The virtual size from the first bytes (`head`) of an image of `size` bytes. */
export function virtualSizeFromHead(diskFormat: string | null, size: number, head: Buffer): number | null {
  if (diskFormat === 'raw') return size;
  if (diskFormat !== 'qcow2') return null;
  if (head.length < HEADER_BYTES || head.readUInt32BE(0) !== QCOW2_MAGIC) return null;
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) return null;
  const virtual = head.readBigUInt64BE(24);
  if (virtual === 0n || virtual > BigInt(MAX_VIRTUAL_SIZE)) return null;
  return Number(virtual);
}

/** The virtual size of the image in `file`. */
export async function virtualSizeOf(file: string, diskFormat: string, size: number): Promise<number | null> {
  if (diskFormat !== 'qcow2') return virtualSizeFromHead(diskFormat, size, Buffer.alloc(0));
  const fd = await fs.promises.open(file, 'r');
  try {
    const head = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fd.read(head, 0, head.length, 0);
    return virtualSizeFromHead(diskFormat, size, head.subarray(0, bytesRead));
  } finally {
    await fd.close();
  }
}
