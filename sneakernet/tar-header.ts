/**
 * The 512-byte ustar header of a volume entry (docs/FORMAT.md: a regular file, mode 0644, uid/gid 0, no user or
 * group name, no PAX or GNU extension), byte for byte what tar-stream writes for the same fields, so volumes written
 * before and after the writer stopped going through tar-stream are the same bytes (a resend must reproduce them).
 * Numbers are octal digits padded with zeros and ended by a space; a size of 8 GiB or more does not fit 11 octal
 * digits and is written in base 256 (first byte 0x80), as GNU tar and tar-stream do.
 */
import { EcluseError } from './errors.js';

export const TAR_BLOCK = 512;

export interface EntryHeader {
  /** ASCII, at most 100 bytes (volume entry names are `blobs/sha256/<hex>[.partNNNN]`). */
  name: string;
  size: number;
  mtime: Date;
  mode?: number;
}

const NAME = 0;
const MODE = 100;
const UID = 108;
const GID = 116;
const SIZE = 124;
const MTIME = 136;
const CHECKSUM = 148;
const TYPEFLAG = 156;
const MAGIC = 257;
const DEVMAJOR = 329;
const DEVMINOR = 337;

/** `digits` octal digits of `value` (zero padded) and a space; all sevens when it does not fit. */
function octal(value: number, digits: number): string {
  const text = value.toString(8);
  return text.length > digits ? `${'7'.repeat(digits)} ` : `${text.padStart(digits, '0')} `;
}

export function tarHeader(h: EntryHeader): Buffer {
  const name = Buffer.from(h.name, 'latin1');
  if (name.length > 100 || !/^[\x21-\x7e]+$/.test(h.name)) {
    throw new EcluseError(
      'E_INTERNAL',
      `volume entry name ${JSON.stringify(h.name)} does not fit a plain ustar header (a bug: report it with this line)`,
    );
  }
  if (!Number.isSafeInteger(h.size) || h.size < 0) {
    throw new EcluseError('E_INTERNAL', `volume entry ${h.name} has size ${h.size} (a bug: report it with this line)`);
  }
  const b = Buffer.alloc(TAR_BLOCK);
  name.copy(b, NAME);
  b.write(octal((h.mode ?? 0o644) & 0o7777, 6), MODE, 'latin1');
  b.write(octal(0, 6), UID, 'latin1');
  b.write(octal(0, 6), GID, 'latin1');
  if (h.size.toString(8).length > 11) {
    b[SIZE] = 0x80;
    let n = h.size;
    for (let i = 11; i > 0; i--) {
      b[SIZE + i] = n % 256;
      n = Math.floor(n / 256);
    }
  } else {
    b.write(octal(h.size, 11), SIZE, 'latin1');
  }
  b.write(octal((h.mtime.getTime() / 1000) | 0, 11), MTIME, 'latin1');
  b[TYPEFLAG] = 0x30; // '0': a regular file
  b.write('ustar\u000000', MAGIC, 'latin1');
  b.write(octal(0, 6), DEVMAJOR, 'latin1');
  b.write(octal(0, 6), DEVMINOR, 'latin1');
  // The checksum counts its own field as eight spaces.
  let sum = 8 * 0x20;
  for (let i = 0; i < TAR_BLOCK; i++) if (i < CHECKSUM || i >= CHECKSUM + 8) sum += b[i] as number;
  b.write(octal(sum, 6), CHECKSUM, 'latin1');
  return b;
}
