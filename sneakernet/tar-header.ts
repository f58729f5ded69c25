/**
 * The 512-byte ustar headers of the volumes (docs/FORMAT.md): `encodeHeader` writes one the way the export station
 * always has (tar-stream's bytes), `decodeHeader` reads one back for the strict reader. Decoding: the fields the volume
 * reader checks (type, name, size, link name), after the header checksum and the ustar (or GNU) magic. Only what the
 * strict reader needs: it refuses every type but a regular file, so extended headers (PAX, GNU long names) are never
 * interpreted, only named.
 */
import { EcluseError } from './errors.js';

export interface TarHeader {
  /** tar-stream's names: 'file', 'symlink', 'directory', 'pax-header', ... or `typeflag <c>` for an unknown one. */
  type: string;
  name: string;
  size: number;
  linkname: string | null;
}

const TYPES: Record<number, string> = {
  0: 'file',
  1: 'link',
  2: 'symlink',
  3: 'character-device',
  4: 'block-device',
  5: 'directory',
  6: 'fifo',
  7: 'contiguous-file',
  72: 'pax-header',
  55: 'pax-global-header',
  27: 'gnu-long-link-path',
  28: 'gnu-long-path',
  30: 'gnu-long-path',
};
const ZERO = 0x30;
const USTAR = Buffer.from('ustar\u000000', 'latin1');
const GNU = Buffer.from('ustar  \u0000', 'latin1');

/** Why a block is not a tar header (the reader reports it as a malformed volume). */
export class NotAHeader extends Error {}

/** True when all 512 bytes are zero (an end-of-archive block). */
export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function str(b: Buffer, at: number, len: number): string {
  const end = b.indexOf(0, at);
  return b.toString('latin1', at, end < 0 || end > at + len ? at + len : end);
}

/** An octal field (leading spaces and zeros allowed, ended by a space or NUL), or base-256 when its top bit is set. */
function num(b: Buffer, at: number, len: number): number {
  if ((b[at] as number) & 0x80) {
    if (b[at] !== 0x80) throw new NotAHeader('a negative base-256 number');
    let n = 0;
    for (let i = at + 1; i < at + len; i++) n = n * 256 + (b[i] as number);
    if (!Number.isSafeInteger(n)) throw new NotAHeader('a number too large');
    return n;
  }
  let i = at;
  const end = at + len;
  while (i < end && b[i] === 0x20) i++;
  let n = 0;
  let digits = 0;
  for (; i < end; i++) {
    const c = b[i] as number;
    if (c === 0x20 || c === 0) break;
    if (c < ZERO || c > ZERO + 7) throw new NotAHeader(`a non-octal digit in a number field`);
    n = n * 8 + (c - ZERO);
    digits++;
  }
  return digits === 0 ? 0 : n;
}

/** Decodes `block` (512 bytes); throws NotAHeader when its checksum or magic is wrong. */
export function decodeHeader(block: Buffer): TarHeader {
  let sum = 8 * 0x20;
  for (let i = 0; i < 148; i++) sum += block[i] as number;
  for (let i = 156; i < 512; i++) sum += block[i] as number;
  if (sum !== num(block, 148, 8)) throw new NotAHeader('its checksum does not match');
  const ustar = block.subarray(257, 265);
  const isUstar = ustar.equals(USTAR);
  if (!isUstar && !ustar.equals(GNU)) throw new NotAHeader('not a ustar header');
  const flag = block[156] === 0 ? 0 : (block[156] as number) - ZERO;
  let name = str(block, 0, 100);
  if (isUstar && block[345] !== 0) name = `${str(block, 345, 155)}/${name}`;
  return {
    type: TYPES[flag] ?? `typeflag ${JSON.stringify(String.fromCharCode(block[156] as number))}`,
    name,
    size: num(block, 124, 12),
    linkname: block[157] === 0 ? null : str(block, 157, 100),
  };
}

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

/**
 * The header of a volume entry as the writer puts it (sneakernet/volume-writer.ts): a regular file, mode 0644,
 * uid/gid 0, no user or group name, no PAX or GNU extension, byte for byte what tar-stream writes for the same fields,
 * so volumes written before and after the writer stopped going through tar-stream are the same bytes (a resend must
 * reproduce them). Numbers are octal digits padded with zeros and ended by a space; a size of 8 GiB or more does not
 * fit 11 octal digits and is written in base 256 (first byte 0x80), as GNU tar and tar-stream do.
 */
export function encodeHeader(h: EntryHeader): Buffer {
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
