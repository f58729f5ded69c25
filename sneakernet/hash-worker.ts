/**
 * Worker thread that hashes, with one algorithm, the slots of shared memory it is told about, and answers each slot
 * as soon as it is hashed (so the slot can be reused) and the digest on `end`. Lets sha512 and md5 run on another core
 * than the one reading, parsing, writing and computing sha256.
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

type Message = { kind: 'chunk'; slot: number; length: number } | { kind: 'end' };

const { algorithm, slots } = workerData as { algorithm: string; slots: SharedArrayBuffer[] };
const views = slots.map((s) => new Uint8Array(s));
let hash = createHash(algorithm);

parentPort?.on('message', (m: Message) => {
  if (m.kind === 'chunk') {
    const view = views[m.slot];
    if (view) hash.update(view.subarray(0, m.length));
    parentPort?.postMessage({ kind: 'done', slot: m.slot });
  } else {
    parentPort?.postMessage({ kind: 'digest', hex: hash.digest('hex') });
    hash = createHash(algorithm);
  }
});
