/**
 * Sends bytes `start..end` of an open file as the body of an HTTP response, at the pace of the client's socket.
 *
 * Node has no sendfile, so every byte crosses user space once: read into a buffer, written to the socket. What made
 * `fs.createReadStream` slow here was not the copy but the garbage: a fresh 1 MiB buffer per read is 1 GiB of external
 * memory per GiB served, and V8 answers that pressure with full mark-sweeps of the whole server heap (measured: 1 s
 * of CPU per GiB in the `ecluse serve` process, against 0.3 s for the same loop with reused buffers). So the reads go
 * into 1 MiB buffers taken from a small shared pool and given back once the socket has written them.
 *
 * A buffer returns to the pool only from the write's own success callback (the kernel has the bytes; Node no longer
 * refers to the buffer); a write that ends in an error leaves its buffer to the garbage collector, so a buffer still
 * referenced by a failed connection is never handed to another download. Only the bytes read are ever written
 * (`subarray(0, bytesRead)`): a pooled buffer's older contents, from another image, never reach a client.
 */
import type fs from 'node:fs';
import type http from 'node:http';

/** Bytes read and written at a time: a 16th of the syscalls of the 64 KiB stream default. */
export const SEND_CHUNK = 1024 * 1024;
/** Idle buffers kept for the next downloads (at most this many MiB stay allocated between bursts). */
const POOL_MAX_IDLE = 16;

const idle: Buffer[] = [];

function takeBuffer(): Buffer {
  return idle.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK);
}

function giveBack(buf: Buffer): void {
  if (idle.length < POOL_MAX_IDLE) idle.push(buf);
}

/** How many buffers wait in the pool (for tests: the pool stays bounded). */
export function idleBuffers(): number {
  return idle.length;
}

/** Why a send stopped before its last byte. */
export type SendOutcome =
  | { kind: 'sent' }
  /** The client went away (or the response was destroyed): routine, nothing to report. */
  | { kind: 'closed' }
  /** The file ended before `end`: it changed under the server. */
  | { kind: 'short'; at: number };

/** One read into a pooled buffer; never rejects (a read started ahead may fail before anyone awaits it). */
interface Chunk {
  buf: Buffer;
  bytesRead: number;
  error?: NodeJS.ErrnoException;
}

function readChunk(fh: fs.promises.FileHandle, pos: number, end: number): Promise<Chunk> {
  const buf = takeBuffer();
  return fh.read(buf, 0, Math.min(SEND_CHUNK, end + 1 - pos), pos).then(
    ({ bytesRead }) => ({ buf, bytesRead }),
    (error: NodeJS.ErrnoException) => ({ buf, bytesRead: 0, error }),
  );
}

/**
 * Writes bytes `start..end` (inclusive) of `fh` to `res` (headers set, nothing written yet) and ends it.
 * Resolves how it went; a read error rejects. On anything but `sent` the response is destroyed, so the client sees a
 * broken transfer rather than a short body under a longer `Content-Length`. Does not close `fh`, and has no read
 * pending on it once settled.
 *
 * The next read is started before the current piece is written: while the socket drains one MiB the thread pool
 * fetches the next, so a busy machine's wait for a thread does not leave the connection idle (two buffers a
 * download at most).
 */
export async function sendFileRange(
  fh: fs.promises.FileHandle,
  start: number,
  end: number,
  res: http.ServerResponse,
): Promise<SendOutcome> {
  let closed = res.destroyed;
  const onClose = () => (closed = true);
  res.once('close', onClose);
  let next: Promise<Chunk> | null = start <= end && !closed ? readChunk(fh, start, end) : null;
  try {
    for (let pos = start; next !== null;) {
      const chunk: Chunk = await next;
      next = null;
      const { buf, bytesRead } = chunk;
      if (chunk.error !== undefined) {
        giveBack(buf);
        res.destroy();
        throw chunk.error;
      }
      if (closed) {
        giveBack(buf);
        return { kind: 'closed' };
      }
      if (bytesRead === 0) {
        giveBack(buf);
        res.destroy();
        return { kind: 'short', at: pos };
      }
      pos += bytesRead;
      if (pos <= end) next = readChunk(fh, pos, end);
      const ready = res.write(bytesRead === buf.length ? buf : buf.subarray(0, bytesRead), (err) => {
        if (!err) giveBack(buf);
      });
      if (!ready && !closed) await drained(res);
    }
    if (closed) return { kind: 'closed' };
    res.end();
    return { kind: 'sent' };
  } finally {
    res.off('close', onClose);
    // Settled with no read left behind on a handle the caller is about to close.
    if (next !== null) giveBack((await next).buf);
  }
}

/** Resolves once the socket took everything queued ('drain'), or the response closed. */
function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
