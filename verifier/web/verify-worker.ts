/**
 * Runs `verifyLog` off the server's event loop (a full verification of a million events takes seconds): opens its
 * own read-only connection to `<home>/ecluse.sqlite` and posts back the status or the first problem.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { EcluseError } from '../../sneakernet/errors.js';
import { verifyLog } from '../audit/verify.js';
import { openDb } from '../db.js';

const { home } = workerData as { home: string };
const db = openDb(home, { readonly: true });
try {
  parentPort?.postMessage({ ok: true, status: verifyLog(db, home) });
} catch (e) {
  if (e instanceof EcluseError) {
    parentPort?.postMessage({ ok: false, code: e.code, message: e.message, index: e.context.index ?? null });
  } else {
    parentPort?.postMessage({ ok: false, code: 'E_INTERNAL', message: (e as Error).message, index: null });
  }
} finally {
  db.close();
}
