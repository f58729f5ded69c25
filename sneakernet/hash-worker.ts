/**
 * Worker thread hashing, with one algorithm, the chunks the main thread puts in a shared ring (see digests.ts). No
 * message per chunk: the worker blocks on the ring's write counter with Atomics.wait, hashes every slot published,
 * advances its own read counter and wakes the producer. A slot whose length is END marks the end of one stream: the
 * worker posts that stream's digest and starts a new hash.
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

interface RingData {
  algorithm: string;
  /** Which read counter is this worker's (index into control). */
  reader: number;
  control: SharedArrayBuffer;
  lengths: SharedArrayBuffer;
  slots: SharedArrayBuffer[];
}

const END = -1;
const WRITE = 0;
const { algorithm, reader, control, lengths, slots } = workerData as RingData;
const ctl = new Int32Array(control);
const len = new Int32Array(lengths);
const views = slots.map((s) => new Uint8Array(s));
let hash = createHash(algorithm);
let next = Atomics.load(ctl, reader);

for (;;) {
  while (Atomics.load(ctl, WRITE) === next) Atomics.wait(ctl, WRITE, next);
  const slot = next % views.length;
  const n = Atomics.load(len, slot);
  if (n === END) {
    parentPort?.postMessage({ reader, hex: hash.digest('hex') });
    hash = createHash(algorithm);
  } else {
    hash.update((views[slot] as Uint8Array).subarray(0, n));
  }
  next = (next + 1) | 0;
  Atomics.store(ctl, reader, next);
  Atomics.notify(ctl, reader);
}
