/**
 * The log's verification status for the web view. A small log is verified inline; a large one (seconds for a
 * million events) in a worker thread with its own read-only connection, so the Glance API and the pages stay
 * responsive; the page shows the last result and says when a new run is under way. A result is reused while the log
 * and its checkpoints are unchanged, for at most five minutes.
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { EcluseError } from '../../sneakernet/errors.js';
import type { Db } from '../db.js';
import { verifyLog, type LogStatus } from '../audit/verify.js';
import { logExtent } from '../audit/tree.js';

export type VerifyResult =
  { ok: true; status: LogStatus } | { ok: false; code: string; message: string; index: number | null };

export interface VerificationState {
  result: VerifyResult | null;
  at: string | null;
  running: boolean;
}

const INLINE_LIMIT = 20_000;
const MAX_AGE_MS = 300_000;
const states = new WeakMap<Db, VerificationState & { key: string }>();

function workerScript(): URL {
  const beside = new URL('./verify-worker.js', import.meta.url);
  if (fs.existsSync(fileURLToPath(beside))) return beside;
  return new URL('../../dist/verifier/web/verify-worker.js', import.meta.url);
}

function verifyInline(db: Db, home: string | null): VerifyResult {
  try {
    return { ok: true, status: verifyLog(db, home) };
  } catch (e) {
    if (!(e instanceof EcluseError)) throw e;
    const index = typeof e.context.index === 'number' ? e.context.index : null;
    return { ok: false, code: e.code, message: e.message, index };
  }
}

export function logVerification(db: Db, home: string | null): VerificationState {
  const k = logExtent(db);
  const key = JSON.stringify(k);
  const st = states.get(db) ?? { key: '', result: null, at: null, running: false };
  states.set(db, st);
  const fresh = st.key === key && st.at !== null && Date.now() - Date.parse(st.at) < MAX_AGE_MS;
  if (fresh || st.running) return st;
  if (!home || (k.l ?? 0) < INLINE_LIMIT) {
    st.result = verifyInline(db, home);
    st.at = new Date().toISOString();
    st.key = key;
    return st;
  }
  st.running = true;
  const worker = new Worker(workerScript(), { workerData: { home } });
  worker.once('message', (m: VerifyResult) => {
    st.result = m;
    st.at = new Date().toISOString();
    st.key = key;
  });
  worker.once('error', (e) => {
    st.result = { ok: false, code: 'E_INTERNAL', message: `verification failed to run: ${e.message}`, index: null };
    st.at = new Date().toISOString();
  });
  worker.once('exit', () => {
    st.running = false;
  });
  worker.unref();
  return st;
}
