/**
 * Splits an oci-image artifact's carried bytes (its carried blobs back to back, in the signed `image.blobs` order,
 * docs/FORMAT.md 4.9) into one private staging file per blob, `<staging>/blob-<hex>`, hashing each as it is written:
 * when a blob's last byte has arrived its SHA-256 must be its digest (E_DIGEST naming the blob) before the next byte is
 * taken. Manifests and indexes (at most 4 MiB each) are also kept in memory for the strict parse that follows.
 * Verify mode (no folder) hashes without writing. `abort()` removes every file written.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError } from '../../sneakernet/errors.js';
import { LIMITS } from '../../sneakernet/limits.js';
import { isIndexMediaType, isManifestMediaType } from '../../sneakernet/oci/media-types.js';

export interface CarriedBlob {
  digest: string;
  size: number;
  mediaType: string;
}

/** What one image's carried blobs left in staging: each blob's file (null: verify mode) and its documents' bytes. */
export interface StagedImageBlobs {
  files: Array<{ digest: string; file: string | null; size: number }>;
  /** Manifests and indexes by digest (verified), for the strict parse. */
  documents: Map<string, Buffer>;
}

interface Current {
  blob: CarriedBlob;
  hash: crypto.Hash;
  handle: fs.promises.FileHandle | null;
  file: string | null;
  received: number;
  /** The bytes of a manifest or index (bounded), else null. */
  kept: Buffer[] | null;
  /** Positional writes started and not yet awaited, oldest first (reading, hashing and writing overlap). */
  writes: Array<Promise<void>>;
}

/** Writes in flight per blob, as the artifact stager allows. */
const WRITES_IN_FLIGHT = 8;

const isDocument = (mediaType: string) => isIndexMediaType(mediaType) || isManifestMediaType(mediaType);

export class BlobSplitter {
  private next = 0;
  private current: Current | null = null;
  private readonly written: string[] = [];
  readonly staged: StagedImageBlobs = { files: [], documents: new Map() };

  /** `blobs`: the artifact's carried blobs in signed order; `what`: `name version` for messages. */
  constructor(
    private readonly blobs: readonly CarriedBlob[],
    private readonly dir: string | null,
    private readonly what: string,
    private readonly artifact: string,
  ) {}

  private async open(blob: CarriedBlob): Promise<Current> {
    if (isDocument(blob.mediaType) && blob.size > LIMITS.imageManifestBytes) {
      throw new EcluseError(
        'E_IMAGE_MANIFEST',
        `the manifest ${blob.digest} of ${this.what} is ${blob.size} bytes, over the ${LIMITS.imageManifestBytes} bound`,
        { check: 'image-manifest', artifact: this.artifact, blob: blob.digest },
      );
    }
    const file = this.dir ? path.join(this.dir, `blob-${blob.digest.slice('sha256:'.length)}`) : null;
    if (file) this.written.push(file);
    const handle = file ? await fs.promises.open(file, 'wx', 0o600) : null;
    return {
      blob,
      hash: crypto.createHash('sha256'),
      handle,
      file,
      received: 0,
      kept: isDocument(blob.mediaType) ? [] : null,
      writes: [],
    };
  }

  /** Opens the next blob, finishing every zero-byte blob on the way. */
  private async advance(): Promise<Current | null> {
    while (this.current === null && this.next < this.blobs.length) {
      const blob = this.blobs[this.next++] as CarriedBlob;
      this.current = await this.open(blob);
      if (blob.size === 0) await this.close(this.current);
    }
    return this.current;
  }

  private async close(cur: Current): Promise<void> {
    this.current = null;
    if (cur.handle) {
      const handle = cur.handle;
      cur.handle = null;
      try {
        for (const w of cur.writes.splice(0)) await w;
        await handle.sync();
      } catch (e) {
        // A failed write (a full disk) must not leave the file open: its blocks would stay taken after removal.
        await Promise.allSettled(cur.writes.splice(0));
        await handle.close().catch(() => undefined);
        throw e;
      }
      await handle.close();
    }
    const got = `sha256:${cur.hash.digest('hex')}`;
    if (got !== cur.blob.digest) {
      throw new EcluseError(
        'E_DIGEST',
        `the blob ${cur.blob.digest} (${cur.blob.mediaType}) of ${this.what} does not match its digest: its bytes hash to ${got}`,
        { check: 'image-blob-digest', artifact: this.artifact, blob: cur.blob.digest },
      );
    }
    if (cur.kept) this.staged.documents.set(cur.blob.digest, Buffer.concat(cur.kept));
    this.staged.files.push({ digest: cur.blob.digest, file: cur.file, size: cur.blob.size });
  }

  /** Takes the artifact's next bytes. */
  async write(chunk: Buffer): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      const cur = await this.advance();
      if (!cur) {
        throw new EcluseError('E_FORMAT', `${this.what} carries more bytes than its listed blobs`, {
          check: 'image-blob-size',
          artifact: this.artifact,
        });
      }
      const take = Math.min(chunk.length - at, cur.blob.size - cur.received);
      const piece = chunk.subarray(at, at + take);
      at += take;
      if (cur.handle) {
        const write = writeAll(cur.handle, piece, cur.received);
        write.catch(() => undefined); // awaited below or in close(); never an unhandled rejection
        cur.writes.push(write);
      }
      cur.received += take;
      cur.hash.update(piece);
      cur.kept?.push(Buffer.from(piece));
      if (cur.writes.length >= WRITES_IN_FLIGHT) await cur.writes.shift();
      if (cur.received === cur.blob.size) await this.close(cur);
    }
  }

  /** After the artifact's last byte: every listed carried blob must be complete (zero-byte ones at the end too). */
  async finish(): Promise<StagedImageBlobs> {
    await this.advance();
    if (this.current !== null || this.next < this.blobs.length) {
      throw new EcluseError('E_FORMAT', `${this.what} ended before its last listed blob was complete`, {
        check: 'image-blob-size',
        artifact: this.artifact,
      });
    }
    return this.staged;
  }

  /** Closes what is open and removes every file written. */
  async abort(): Promise<void> {
    const cur = this.current;
    this.current = null;
    await Promise.allSettled(cur?.writes.splice(0) ?? []);
    await cur?.handle?.close().catch(() => undefined);
    await Promise.all(this.written.map((f) => fs.promises.rm(f, { force: true })));
  }
}

/** Writes all of `piece` at `position` (a short write, as a filling disk makes, is continued). */
async function writeAll(handle: fs.promises.FileHandle, piece: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < piece.length) {
    const { bytesWritten } = await handle.write(piece, done, piece.length - done, position + done);
    if (bytesWritten <= 0) {
      throw new EcluseError('E_NO_SPACE', `a write stored ${bytesWritten} bytes`, { check: 'space' });
    }
    done += bytesWritten;
  }
}
