/**
 * Reads one tar volume from the media, strictly, exactly once. The statement says what the volume must hold, and
 * the reader accepts nothing else: only regular files, exactly the listed entries in the listed order, with the
 * listed sizes, at the byte offsets a plain ustar writer puts them (so no PAX or GNU extended headers, which would
 * shift them), nothing after the end of the archive. The whole file is hashed as it is read and must match the
 * volume's sha256 and size.
 *
 * The file is read in large reads (1 MiB) into a few reused buffers (sneakernet/read-buffers.ts), ahead of the
 * parser: nothing is allocated per chunk. Entry data is handed to a sink (the caller stages it privately and hashes
 * it per artifact) as pieces of those buffers: lent (the sink gives each piece back with `buffers.release`) when the
 * caller passes its buffers, else copied. When the bytes do not parse, the rest of the volume is still hashed: if the
 * digest differs the refusal is E_DIGEST (the bytes are not the ones that were signed), otherwise E_FORMAT (the
 * signed volume itself is malformed).
 */
import path from 'node:path';
import { createHash } from 'node:crypto';
import { asEcluseError, EcluseError } from './errors.js';
import { canonicalVolumeSize, type Volume, type VolumeEntry } from './statement.js';
import { BLOCK, END_OF_ARCHIVE } from './volume-plan.js';
import type { HashPool } from './digests.js';
import { checkId } from './check-ids.js';
import { ReadBuffers } from './read-buffers.js';
import { openMediaFile, readFully } from './media-file.js';
import { decodeHeader, isZeroBlock, NotAHeader, type TarHeader } from './tar-header.js';

/** The volume's SHA-256: in a worker thread when the caller lends a pool (the import does), else in this thread. */
export interface VolumeHash {
  update(chunk: Buffer): Promise<void> | void;
  hex(): Promise<string> | string;
}

function volumeHash(pool: HashPool<'sha256'> | undefined): VolumeHash {
  if (pool) {
    const hasher = pool.begin();
    return { update: (chunk) => hasher.update(chunk), hex: async () => (await hasher.digest()).sha256 };
  }
  const hash = createHash('sha256');
  return { update: (chunk) => void hash.update(chunk), hex: () => hash.digest('hex') };
}

/**
 * Consumes one entry's bytes (it must read them all). When `readVolume` was given the caller's `buffers`, every piece
 * is lent: the sink must give each back (`buffers.release(piece)`) once done with it, also when it fails.
 */
export type EntrySink = (entry: VolumeEntry, data: AsyncIterable<Buffer>) => Promise<void>;

export interface ReadVolumeOptions {
  /** Computes the volume's SHA-256 in a worker (default: in this thread). */
  hashPool?: HashPool<'sha256'>;
  /** The caller's read buffers: entry pieces are lent out of them, not copied (see EntrySink). */
  buffers?: ReadBuffers;
  /**
   * In place of the volume's SHA-256 (docs/FORMAT.md 4.11): checks every byte outside the entry data against the
   * statement, when chunk lists prove the data (sneakernet/volume-layout.ts). Returns null to hash as usual.
   */
  layoutCheck?: (volume: Volume) => VolumeHash | null;
}

/** Without the caller's buffers: a few of the reader's own, and every piece handed out is a copy. */
const OWN_BUFFERS = 3;
const OWN_BUFFER_BYTES = 1024 * 1024;
/** Direct reads in flight at once (the kernel reads ahead only through the page cache). */
const DIRECT_READS_AHEAD = 4;

function formatError(volume: string, message: string): EcluseError {
  return new EcluseError('E_FORMAT', `${volume}: ${message}`, { check: checkId('volume-structure'), volume });
}

function checkHeader(volume: Volume, index: number, header: TarHeader): VolumeEntry {
  const expected = volume.entries[index];
  if (!expected) throw formatError(volume.name, `holds more entries than the ${volume.entries.length} listed`);
  if (header.type !== 'file') throw formatError(volume.name, `entry ${index + 1} is a ${header.type}, not a file`);
  if (header.linkname) throw formatError(volume.name, `entry ${index + 1} has extended headers`);
  if (header.name !== expected.path) {
    throw formatError(volume.name, `entry ${index + 1} is named ${JSON.stringify(header.name)}, not ${expected.path}`);
  }
  if (header.size !== expected.size) {
    throw new EcluseError(
      'E_SIZE',
      `${volume.name}: entry ${expected.path} claims ${header.size} bytes, the statement says ${expected.size}`,
      { check: checkId('entry-size'), volume: volume.name },
    );
  }
  return expected;
}

/** The pieces of the volume as they were read, in order; the reader's own hold on each is dropped when passed. */
class Pieces {
  private readonly queue: Buffer[] = [];
  private wake: (() => void) | null = null;
  private ended = false;
  private piece: Buffer | null = null;
  private at = 0;
  /** File offset of the next byte `take` returns. */
  offset = 0;

  constructor(private readonly buffers: ReadBuffers) {}

  push(piece: Buffer): void {
    this.queue.push(piece);
    this.wake?.();
  }

  end(): void {
    this.ended = true;
    this.wake?.();
  }

  /** The current piece with bytes left in it, waiting for the next one; null at the end of what was read. */
  private async current(): Promise<Buffer | null> {
    while (!this.piece || this.at >= this.piece.length) {
      if (this.piece) this.buffers.release(this.piece);
      this.piece = null;
      this.at = 0;
      const next = this.queue.shift();
      if (next) this.piece = next;
      else if (this.ended) return null;
      else await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = null;
    }
    return this.piece;
  }

  /** Up to `max` bytes (never across two reads), or null at the end. */
  async take(max: number): Promise<Buffer | null> {
    const piece = await this.current();
    if (!piece) return null;
    const view = piece.subarray(this.at, this.at + Math.min(max, piece.length - this.at));
    this.at += view.length;
    this.offset += view.length;
    return view;
  }

  /** Exactly `n` bytes (n ≤ one block: blocks never straddle two reads), or null when fewer are left. */
  async block(n: number): Promise<Buffer | null> {
    const view = await this.take(n);
    return view && view.length === n ? view : null;
  }

  /** Gives back everything not taken (after a refusal). */
  async drain(): Promise<void> {
    while (await this.take(Infinity));
  }
}

/**
 * Streams `file` through the strict tar reader, calling `sink` for each entry in order. Resolves when the volume
 * matched its statement exactly; rejects with an EcluseError naming the failed check otherwise.
 */
export async function readVolume(
  file: string,
  volume: Volume,
  sink: EntrySink,
  onProgress?: (bytes: number) => void,
  o: ReadVolumeOptions = {},
): Promise<void> {
  const lend = o.buffers !== undefined;
  const buffers = o.buffers ?? new ReadBuffers(OWN_BUFFERS, OWN_BUFFER_BYTES);
  const { fd, size, direct } = await openMediaFile(file, `volume ${volume.name}`, { direct: buffers.aligned });
  if (buffers.bytes % BLOCK !== 0) throw new EcluseError('E_INTERNAL', 'read buffers must hold whole tar blocks');
  let hash: VolumeHash | null = null;
  let reading: Promise<void> = Promise.resolve();
  const pieces = new Pieces(buffers);
  // Set when the reader must stop early (the sink failed on its own account): no more reads are started.
  let stop = false;
  let started = false;
  let readFailure: unknown = null;
  let hashFailure: unknown = null;
  // Pieces still being hashed by the pool: the digest is asked for once they are done.
  const hashing = new Set<Promise<void>>();
  try {
    if (size !== volume.size) {
      throw new EcluseError('E_SIZE', `volume ${volume.name} is ${size} bytes, the statement says ${volume.size}`, {
        check: checkId('volume-size'),
        volume: volume.name,
      });
    }
    const layout = o.layoutCheck?.(volume) ?? null;
    const h = layout ?? volumeHash(o.hashPool);
    hash = h;
    started = true;
    // Reads every byte of the volume once, ahead of the parser, into the buffers in turn; hashes each read. Direct
    // reads get no read-ahead from the kernel: a few are kept in flight instead.
    const depth = direct ? DIRECT_READS_AHEAD : 1;
    reading = (async () => {
      const ahead: Array<{ buf: Buffer; read: Promise<number> }> = [];
      try {
        for (let next = 0; ;) {
          // A free buffer is waited for only when no read is ahead: the piece of a read not yet passed on may be what
          // a consumer needs before it gives a buffer back.
          while (!stop && next < size && ahead.length < depth) {
            const buf = ahead.length === 0 ? await buffers.take() : buffers.tryTake();
            if (!buf) break;
            const want = Math.min(buf.length, size - next);
            const read = readFully(fd, buf, want, next, direct, volume);
            read.catch(() => undefined); // awaited below, or settled before its buffer is given back
            ahead.push({ buf, read });
            next += want;
          }
          const oldest = ahead.shift();
          if (!oldest || stop) {
            if (oldest) ahead.unshift(oldest);
            break;
          }
          let n: number;
          try {
            n = await oldest.read;
          } catch (e) {
            buffers.release(oldest.buf);
            throw e;
          }
          const piece = oldest.buf.subarray(0, n);
          const hashed = h.update(piece);
          if (hashed) {
            buffers.hold(piece);
            const p = hashed.then(
              () => undefined,
              (e: unknown) => void (hashFailure ??= e),
            );
            hashing.add(p);
            void p.finally(() => {
              hashing.delete(p);
              buffers.release(piece);
            });
          }
          onProgress?.(n);
          pieces.push(piece);
        }
      } catch (e) {
        readFailure = e;
      } finally {
        for (const { buf, read } of ahead.splice(0)) {
          await read.catch(() => undefined);
          buffers.release(buf);
        }
        pieces.end();
      }
    })();

    let index = 0;
    let failure: EcluseError | null = null;
    let sinkFailure: unknown = null;
    try {
      await parse();
    } catch (e) {
      if (e instanceof EcluseError) failure = e;
      else throw e;
    }

    async function parse(): Promise<void> {
      for (; index < volume.entries.length; index++) {
        const block = await pieces.block(BLOCK);
        if (!block || isZeroBlock(block)) {
          if (readFailure) return;
          throw formatError(volume.name, `holds ${index} entries, the statement lists ${volume.entries.length}`);
        }
        const entry = checkHeader(volume, index, decode(block));
        let left = entry.size;
        const data = (async function* () {
          while (left > 0) {
            const view = await pieces.take(left);
            if (!view) throw formatError(volume.name, `ends inside entry ${index + 1}`);
            left -= view.length;
            if (lend) buffers.hold(view);
            yield lend ? view : Buffer.from(view);
          }
        })();
        try {
          await sink(entry, data);
        } catch (e) {
          const err = asEcluseError(e);
          // The reader's own refusals, met while the sink pulled the bytes, are about the volume.
          if (err.context.check === checkId('volume-structure') && err.context.volume === volume.name) throw err;
          sinkFailure = e;
          throw err;
        }
        if (left > 0) throw new EcluseError('E_INTERNAL', `the sink left ${left} bytes of ${entry.path} unread`);
        const pad = (BLOCK - (entry.size % BLOCK)) % BLOCK;
        if (pad > 0 && !(await pieces.block(pad))) throw formatError(volume.name, `ends inside entry ${index + 1}`);
      }
      // After the last listed entry: exactly the two zero blocks of the end of the archive, nothing else.
      const rest = size - pieces.offset;
      const next = rest >= BLOCK ? await pieces.block(BLOCK) : null;
      if (next && !isZeroBlock(next) && looksLikeHeader(next)) {
        throw formatError(volume.name, `holds more entries than the ${volume.entries.length} listed`);
      }
      if (rest !== END_OF_ARCHIVE) {
        throw formatError(
          volume.name,
          `is ${volume.size} bytes, but its entries and the end of archive make ${canonicalVolumeSize(volume.entries)}`,
        );
      }
      const last = await pieces.block(BLOCK);
      if (!next || !last || !isZeroBlock(next) || !isZeroBlock(last)) {
        throw formatError(volume.name, 'has data after the end of the archive');
      }
    }

    function decode(block: Buffer): TarHeader {
      try {
        return decodeHeader(block);
      } catch (e) {
        if (!(e instanceof NotAHeader)) throw e;
        throw formatError(volume.name, `is not a valid tar archive (entry ${index + 1}: ${e.message})`);
      }
    }

    // The sink's own failures (a digest, the staging disk) are not about the volume's structure. But an artifact
    // that does not match may be the victim of a damaged volume (its last bytes are in this one): the volume is
    // hashed to its end first, so the operator is told which volume to write again, not only which artifact. A
    // volume checked by its layout only is not hashed: its caller finds the damaged volume (verifier/damaged-volume.ts).
    if (sinkFailure !== null) {
      const err = asEcluseError(sinkFailure);
      const artifactDigest =
        err.code === 'E_DIGEST' &&
        (err.context.check === 'artifact-digest' || (err.context.check === 'artifact-chunk' && layout === null));
      if (!artifactDigest) {
        stop = true;
        throw err;
      }
    }
    // What is left unparsed (after a refusal) is still read and hashed, and given back.
    await Promise.all([pieces.drain(), reading]);
    if (readFailure) throw readError(readFailure, volume);
    await Promise.all(hashing);
    if (hashFailure) throw asEcluseError(hashFailure);
    hash = null;
    if ((await h.hex()) !== volume.sha256) throw volumeDigestError(volume, file);
    if (sinkFailure !== null) throw asEcluseError(sinkFailure);
    if (failure) throw failure;
    // parseStatement already refuses such a statement; checked again here so the reader stands on its own.
    const canonical = canonicalVolumeSize(volume.entries);
    if (volume.size !== canonical) {
      throw formatError(
        volume.name,
        `is ${volume.size} bytes, but its entries and the end of archive make ${canonical}`,
      );
    }
  } finally {
    stop = true;
    if (!started) pieces.end();
    await Promise.all([pieces.drain().catch(() => undefined), reading]);
    await Promise.all(hashing);
    // A refusal before the end still ends the hash's stream, so a lent pool is ready for the next volume.
    if (hash) await Promise.resolve(hash.hex()).catch(() => undefined);
    await fd.close();
  }
}

/** Whether a non-zero block after the last entry is a header (another entry) rather than stray bytes. */
function looksLikeHeader(block: Buffer): boolean {
  try {
    decodeHeader(block);
    return true;
  } catch {
    return false;
  }
}

function readError(e: unknown, volume: Volume): EcluseError {
  if (e instanceof EcluseError) return e;
  return new EcluseError(
    'E_IO',
    `reading volume ${volume.name} failed: ${(e as Error).message}`,
    { volume: volume.name },
    { cause: e },
  );
}

/** Step 7i's refusal: the volume read from `file` is not the one the statement signed. */
export function volumeDigestError(volume: Volume, file: string): EcluseError {
  const folder = path.dirname(path.resolve(file));
  return new EcluseError(
    'E_DIGEST',
    `volume ${volume.name} does not match the sha256 in the signed statement (read from ${folder})`,
    { check: checkId('volume-digest'), volume: volume.name, folder },
  );
}
