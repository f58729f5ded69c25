/**
 * Worker thread that hashes the chunks it is sent with one algorithm and answers the digest. Lets sha512 and md5 run
 * on another core than the one reading, parsing and writing (2 cores here: every hash on one thread would be slower
 * than the disk).
 */
import { createHash } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';

type Message = { kind: 'chunk'; data: Uint8Array; bytes: number } | { kind: 'end' };

const algorithm = (workerData as { algorithm: string }).algorithm;
let hash = createHash(algorithm);
let sinceAck = 0;
const ACK_EVERY = 8 * 1024 * 1024;

parentPort?.on('message', (m: Message) => {
  if (m.kind === 'chunk') {
    hash.update(m.data);
    sinceAck += m.bytes;
    if (sinceAck >= ACK_EVERY) {
      parentPort?.postMessage({ kind: 'ack', bytes: sinceAck });
      sinceAck = 0;
    }
  } else {
    parentPort?.postMessage({ kind: 'digest', hex: hash.digest('hex'), bytes: sinceAck });
    sinceAck = 0;
    hash = createHash(algorithm);
  }
});
