/**
 * Worker thread hashing, with one algorithm, the chunks the main thread puts in a shared ring (see digests.ts). No
 * message per chunk: the worker blocks on the ring's write counter with Atomics.wait, hashes every slot published,
 * advances its own read counter and wakes the producer. A slot whose length is END marks the end of one stream: the
 * worker posts that stream's digest and starts a new hash.
 */
import { createHash, createPrivateKey, createSign, constants, type KeyObject, type Sign } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

interface RingData {
  algorithm: string;
  /** Which read counter is this worker's (index into control). */
  reader: number;
  control: SharedArrayBuffer;
  lengths: SharedArrayBuffer;
  slots: SharedArrayBuffer[];
  /** PKCS#8 PEM: also sign every stream (RSA-PSS, SHA-256, maximum salt), for Glance's img_signature. */
  signingKey?: string;
}

const END = -1;
const WRITE = 0;
const { algorithm, reader, control, lengths, slots, signingKey } = workerData as RingData;
const key: KeyObject | null = signingKey ? createPrivateKey(signingKey) : null;
const newSigner = (): Sign | null => (key ? createSign('sha256') : null);
let signer = newSigner();
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
    const signature = signer
      ? signer
          .sign({
            key: key as KeyObject,
            padding: constants.RSA_PKCS1_PSS_PADDING,
            saltLength: constants.RSA_PSS_SALTLEN_MAX_SIGN,
          })
          .toString('base64')
      : undefined;
    parentPort?.postMessage({ reader, hex: hash.digest('hex'), signature });
    hash = createHash(algorithm);
    signer = newSigner();
  } else {
    const bytes = (views[slot] as Uint8Array).subarray(0, n);
    hash.update(bytes);
    signer?.update(bytes);
  }
  next = (next + 1) | 0;
  Atomics.store(ctl, reader, next);
  Atomics.notify(ctl, reader);
}
