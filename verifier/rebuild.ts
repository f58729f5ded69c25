/**
 * Rebuilding a delta artifact (docs/FORMAT.md 4.6) at the import station: the signed recipe says, in order, which
 * byte ranges come from the base image already in the store and which come from the bundle. Bytes are emitted in
 * artifact order into the same sink as a whole artifact's (staging file and hashing), so the rebuilt image is checked
 * against the signed sha256/sha512 exactly like one that travelled whole. The base is only ever read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError } from '../sneakernet/errors.js';
import type { Artifact, Delta } from '../sneakernet/statement.js';
import type { Db } from './db.js';
import { fileWithContent } from './image-catalog.js';
import { subjectName } from '../sneakernet/subject.js';

/** Bytes read from the base per emitted piece. */
const PIECE = 1024 * 1024;

/**
 * The store file holding the delta's base (an image with that sha256 and size that has data), or a refusal naming
 * the base: the export station believed the site holds it, but it is not (or no longer) in the store.
 */
export function baseImageFile(db: Db, imagesDir: string, a: Artifact & { delta: Delta }): string {
  const b = a.delta.base;
  const stored = fileWithContent(db, b.sha256, b.size);
  const file = stored ? path.join(imagesDir, path.basename(stored)) : null;
  if (!file || !fs.statSync(file, { throwIfNoEntry: false })?.isFile()) {
    throw new EcluseError(
      'E_DELTA_BASE',
      `${a.name} ${a.version} is a delta against ${b.name} ${b.version} (sha256 ${b.sha256.slice(0, 12)}…), which is not in the image store: take a receipt out (ecluse receipt export) for the export station`,
      { check: 'delta-base', artifact: subjectName(a) },
    );
  }
  return file;
}

/**
 * Takes the artifact's next bytes. It may still be using a buffer it was given (a write in flight) when it returns,
 * but must be done with it once `buffers - 1` further calls have returned: base bytes are read into a fixed set of
 * `buffers` buffers, reused in turn, so memory stays flat whatever the size of the copies.
 */
export type Emit = (bytes: Buffer) => Promise<void>;

/** Follows one artifact's recipe: `literal` takes the bundle's bytes as they arrive, `finish` the copies after them. */
export class DeltaRebuilder {
  private op = 0;
  /** Bytes of the current `bundle` op already taken. */
  private taken = 0;
  private readonly pool: Buffer[];
  private next = 0;

  constructor(
    private readonly artifact: Artifact & { delta: Delta },
    private readonly base: fs.promises.FileHandle,
    buffers: number,
  ) {
    this.pool = Array.from({ length: buffers }, () => Buffer.allocUnsafe(PIECE));
  }

  /** `buffers`: how many base buffers the emitter may hold at once, plus one (see Emit). */
  static async open(a: Artifact & { delta: Delta }, baseFile: string, buffers: number): Promise<DeltaRebuilder> {
    return new DeltaRebuilder(a, await fs.promises.open(baseFile, 'r'), buffers);
  }

  /** Bytes the bundle carries for this artifact, in order. */
  async literal(bytes: Buffer, emit: Emit): Promise<void> {
    let rest = bytes;
    while (rest.length > 0) {
      await this.copyFromBase(emit);
      const op = this.artifact.delta.ops[this.op];
      if (!op || op.from !== 'bundle') {
        throw new EcluseError(
          'E_FORMAT',
          `the volumes carry more bytes for ${this.artifact.name} than its recipe takes`,
          { check: 'volume-structure' },
        );
      }
      const n = Math.min(op.size - this.taken, rest.length);
      await emit(rest.subarray(0, n));
      rest = rest.subarray(n);
      this.taken += n;
      if (this.taken === op.size) {
        this.op++;
        this.taken = 0;
      }
    }
  }

  /** After the last carried byte: the remaining copies from the base. */
  async finish(emit: Emit): Promise<void> {
    await this.copyFromBase(emit);
    if (this.op !== this.artifact.delta.ops.length) {
      throw new EcluseError('E_FORMAT', `the volumes ended before the recipe of ${this.artifact.name} was complete`, {
        check: 'volume-structure',
      });
    }
  }

  async close(): Promise<void> {
    await this.base.close().catch(() => undefined);
  }

  /** Emits every `base` op from the current one up to the next `bundle` op. */
  private async copyFromBase(emit: Emit): Promise<void> {
    for (let op = this.artifact.delta.ops[this.op]; op?.from === 'base'; op = this.artifact.delta.ops[++this.op]) {
      for (let at = 0; at < op.size; at += PIECE) {
        const n = Math.min(PIECE, op.size - at);
        const buf = (this.pool[this.next++ % this.pool.length] as Buffer).subarray(0, n);
        const { bytesRead } = await this.base.read(buf, 0, n, op.offset + at);
        if (bytesRead !== n) {
          const b = this.artifact.delta.base;
          throw new EcluseError(
            'E_DELTA_BASE',
            `the base ${b.name} ${b.version} in the image store is shorter than its catalog says: run ecluse store check`,
            { check: 'delta-base', artifact: subjectName(this.artifact) },
          );
        }
        await emit(buf);
      }
    }
  }
}
