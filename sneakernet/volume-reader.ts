/**
 * Reads one tar volume from the media, strictly, exactly once. The statement says what the volume must hold, and
 * the reader accepts nothing else: only regular files, exactly the listed entries in the listed order, with the
 * listed sizes, at the byte offsets a plain ustar writer puts them (so no PAX or GNU extended headers, which would
 * shift them), nothing after the end of the archive. The whole file is hashed as it is read and must match the
 * volume's sha256 and size.
 *
 * Entry data is handed to a sink (the caller stages it privately and hashes it per artifact). When the tar layer
 * cannot parse the bytes, the rest of the volume is still hashed: if the digest differs the refusal is E_DIGEST (the
 * bytes are not the ones that were signed), otherwise E_FORMAT (the signed volume itself is malformed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { asEcluseError, EcluseError } from './errors.js';
import { canonicalVolumeSize, type Volume, type VolumeEntry } from './statement.js';
import { BLOCK, END_OF_ARCHIVE } from './volume-plan.js';
import type { HashPool } from './digests.js';
import { checkId } from './check-ids.js';

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

/** Consumes one entry's bytes (it must read them all). */
export type EntrySink = (entry: VolumeEntry, data: AsyncIterable<Buffer>) => Promise<void>;

const CHUNK = 1024 * 1024;
const READ_AHEAD = 2 * CHUNK;

/** Opens a file on the media refusing links and anything but a regular file. */
export async function openMediaFile(file: string, what: string): Promise<{ fd: fs.promises.FileHandle; size: number }> {
  let fd: fs.promises.FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO planted on the media must not wait for a writer (for a regular file it changes
    // nothing); the type is refused right after, from fstat.
    fd = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new EcluseError('E_MISSING_VOLUME', `${what} is not on the media`, { check: checkId('volumes') });
    if (code === 'ELOOP')
      throw new EcluseError('E_FORMAT', `${what} is a symbolic link`, { check: checkId('media-file') });
    throw new EcluseError('E_IO', `cannot open ${what}: ${(e as Error).message}`, {}, { cause: e });
  }
  const st = await fd.stat();
  if (!st.isFile()) {
    await fd.close();
    throw new EcluseError('E_FORMAT', `${what} is not a regular file`, { check: checkId('media-file') });
  }
  return { fd, size: st.size };
}

function formatError(volume: string, message: string): EcluseError {
  return new EcluseError('E_FORMAT', `${volume}: ${message}`, { check: checkId('volume-structure'), volume });
}

function checkHeader(volume: Volume, index: number, header: tar.Header, expectedOffset: number): VolumeEntry {
  const expected = volume.entries[index];
  if (!expected) throw formatError(volume.name, `holds more entries than the ${volume.entries.length} listed`);
  if (header.type !== 'file') throw formatError(volume.name, `entry ${index + 1} is a ${header.type}, not a file`);
  if (header.pax || header.linkname) throw formatError(volume.name, `entry ${index + 1} has extended headers`);
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
  const at = (header as tar.Header & { byteOffset?: number }).byteOffset;
  if (at !== expectedOffset) throw formatError(volume.name, `entry ${index + 1} is preceded by extended headers`);
  return expected;
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
  o: {
    hashPool?: HashPool<'sha256'>;
    /**
     * In place of the volume's SHA-256 (docs/FORMAT.md 4.11): checks every byte outside the entry data against the
     * statement, when chunk lists prove the data (sneakernet/volume-layout.ts). Returns null to hash as usual.
     */
    layoutCheck?: (volume: Volume) => VolumeHash | null;
  } = {},
): Promise<void> {
  const { fd, size } = await openMediaFile(file, `volume ${volume.name}`);
  let hash: VolumeHash | null = null;
  let finished = false;
  // At most one chunk is being hashed (the meter calls back only when it is); what follows waits for it, in order.
  let pending: Promise<void> = Promise.resolve();
  const settled = () => pending.catch(() => undefined);
  try {
    if (size !== volume.size) {
      throw new EcluseError('E_SIZE', `volume ${volume.name} is ${size} bytes, the statement says ${volume.size}`, {
        check: checkId('volume-size'),
        volume: volume.name,
      });
    }
    const h = o.layoutCheck?.(volume) ?? volumeHash(o.hashPool);
    hash = h;
    const digest = async () => {
      await settled();
      finished = true;
      return h.hex();
    };
    let read = 0;
    const endOfArchive = volume.size - END_OF_ARCHIVE;
    const meter = new Transform({
      highWaterMark: READ_AHEAD,
      transform(chunk: Buffer, _enc, cb) {
        const start = read;
        read += chunk.length;
        if (read > volume.size) return cb(new EcluseError('E_SIZE', `volume ${volume.name} grew while being read`));
        const hashed = h.update(chunk);
        if (hashed) pending = hashed;
        // The two end-of-archive blocks must be zero: nothing may ride after the last entry, even signed.
        if (read > endOfArchive) {
          const tail = chunk.subarray(Math.max(0, endOfArchive - start));
          if (tail.some((b) => b !== 0)) {
            void Promise.resolve(hashed).then(
              () => cb(formatError(volume.name, 'has data after the end of the archive')),
              cb,
            );
            return;
          }
        }
        onProgress?.(chunk.length);
        if (hashed) hashed.then(() => cb(null, chunk), cb);
        else cb(null, chunk);
      },
    });
    let index = 0;
    let offset = 0;
    const extract = tar.extract();
    let sinkFailure: unknown = null;
    extract.on('entry', (header, stream, next) => {
      // tar-stream destroys the entry stream with the error passed to next(): it must have a listener.
      stream.on('error', () => undefined);
      let entry: VolumeEntry;
      try {
        entry = checkHeader(volume, index, header, offset + BLOCK);
      } catch (e) {
        stream.resume();
        next(e as Error);
        return;
      }
      index++;
      offset += BLOCK + Math.ceil(entry.size / BLOCK) * BLOCK;
      sink(entry, stream as AsyncIterable<Buffer>).then(
        () => next(),
        (e: unknown) => {
          sinkFailure = e;
          stream.resume();
          next(e as Error);
        },
      );
    });
    const input = fd.createReadStream({ highWaterMark: CHUNK, autoClose: false, start: 0 });
    let failure: unknown = null;
    try {
      await pipeline(input, meter, extract);
    } catch (e) {
      failure = e;
    }
    // The sink's own failures (a digest, the staging disk) are not about the volume's structure. But an artifact
    // that does not match may be the victim of a damaged volume (its last bytes are in this one): the volume is
    // hashed to its end first, so the operator is told which volume to write again, not only which artifact.
    if (sinkFailure !== null) {
      const err = asEcluseError(sinkFailure);
      if (err.code === 'E_DIGEST' && err.context.check === 'artifact-digest') {
        await settled();
        if (read < volume.size) {
          // Opened again: the failed pipeline destroyed the first stream, and with it the handle (see below).
          const rest = await openMediaFile(file, `volume ${volume.name}`);
          try {
            for await (const chunk of rest.fd.createReadStream({ start: read, highWaterMark: CHUNK, autoClose: false }))
              await h.update(chunk as Buffer);
          } finally {
            await rest.fd.close();
          }
        }
        if ((await digest()) !== volume.sha256) throw digestError(volume, file);
      }
      throw err;
    }
    if (failure instanceof EcluseError && failure.code !== 'E_FORMAT' && failure.code !== 'E_SIZE') throw failure;
    if (failure !== null) {
      // Finish hashing what is left so a changed byte is reported as such, whatever the parser made of it.
      await settled();
      if (read < volume.size) {
        // Opened again: the failed pipeline destroyed the first stream, and a destroyed file stream closes its handle
        // whatever autoClose says (a volume larger than the read-ahead then failed with a RangeError on fd -1).
        const rest = await openMediaFile(file, `volume ${volume.name}`);
        try {
          for await (const chunk of rest.fd.createReadStream({ start: read, highWaterMark: CHUNK, autoClose: false })) {
            await h.update(chunk as Buffer);
          }
        } finally {
          await rest.fd.close();
        }
      }
      if ((await digest()) !== volume.sha256) throw digestError(volume, file);
      if (failure instanceof EcluseError) throw failure;
      throw formatError(volume.name, `is not a valid tar archive (${(failure as Error).message})`);
    }
    if ((await digest()) !== volume.sha256) throw digestError(volume, file);
    if (index !== volume.entries.length) {
      throw formatError(volume.name, `holds ${index} entries, the statement lists ${volume.entries.length}`);
    }
    // parseStatement already refuses such a statement; checked again here so the reader stands on its own.
    const canonical = canonicalVolumeSize(volume.entries);
    if (volume.size !== canonical) {
      throw formatError(
        volume.name,
        `is ${volume.size} bytes, but its entries and the end of archive make ${canonical}`,
      );
    }
  } finally {
    // A refusal before the end still ends the hash's stream, so a lent pool is ready for the next volume.
    if (hash && !finished) {
      await settled();
      await Promise.resolve(hash.hex()).catch(() => undefined);
    }
    await fd.close();
  }
}

function digestError(volume: Volume, file: string): EcluseError {
  const folder = path.dirname(path.resolve(file));
  return new EcluseError(
    'E_DIGEST',
    `volume ${volume.name} does not match the sha256 in the signed statement (read from ${folder})`,
    { check: checkId('volume-digest'), volume: volume.name, folder },
  );
}
