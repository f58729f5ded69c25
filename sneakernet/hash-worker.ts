/**
 * Worker thread hashing, with one algorithm, the pieces the main thread publishes in a shared queue of descriptors
 * (buffer, offset, length; see digests.ts). No message per piece: the worker blocks on the queue's write counter with
 * Atomics.wait, hashes every piece published where it lies, advances its own read counter and wakes the producer. A
 * descriptor whose length is END marks the end of one stream: the worker posts that stream's digest and starts a new
 * hash.
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

interface QueueData {
  algorithm: string;
  /** Which read counter is this worker's (index into control). */
  reader: number;
  control: SharedArrayBuffer;
  /** [buffer, offset, length] per queue position. */
  descriptors: SharedArrayBuffer;
  /** The queue's own slots, then the buffers shared with the producer. */
  buffers: SharedArrayBuffer[];
}

const END = -1;
const WRITE = 0;
const FIELDS = 3;
const { algorithm, reader, control, descriptors, buffers } = workerData as QueueData;
const ctl = new Int32Array(control);
const desc = new Int32Array(descriptors);
const positions = desc.length / FIELDS;
const views = buffers.map((s) => new Uint8Array(s));
let hash = createHash(algorithm);
let next = Atomics.load(ctl, reader);

for (;;) {
  while (Atomics.load(ctl, WRITE) === next) Atomics.wait(ctl, WRITE, next);
  const at = (next % positions) * FIELDS;
  const n = Atomics.load(desc, at + 2);
  if (n === END) {
    parentPort?.postMessage({ reader, hex: hash.digest('hex') });
    hash = createHash(algorithm);
  } else {
    const offset = desc[at + 1] as number;
    hash.update((views[desc[at] as number] as Uint8Array).subarray(offset, offset + n));
  }
  next = (next + 1) | 0;
  Atomics.store(ctl, reader, next);
  Atomics.notify(ctl, reader);
}
