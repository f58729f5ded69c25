/**
 * Signed checkpoints: (origin "ecluse/<site id>", size, root hash, time) signed by the audit key. The signed bytes
 * are a small text note, the same inside and outside:
 *
 *   ecluse-audit-checkpoint/v1\norigin <origin>\nsize <n>\nroot <hex>\ntime <ISO 8601>\n
 */
import fs from 'node:fs';
import { sign, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { storedRows } from '../../sneakernet/stored-rows.js';
import { getSetting, type Db } from '../db.js';
import { ensureAuditKey, keyIdOf } from './key.js';
import { importHome, importHomeOfDatabase } from '../home.js';
import { frontierRoot } from './merkle.js';
import { readFrontier } from './tree.js';

export const CheckpointSchema = z.strictObject({
  origin: z.string().min(1),
  size: z.number().int().nonnegative(),
  root: z.string().regex(/^[0-9a-f]{64}$/),
  time: z.string().min(1),
  keyId: z.string().regex(/^[0-9a-f]{64}$/),
  signature: z.string().min(1),
});

export type Checkpoint = z.infer<typeof CheckpointSchema>;

export interface StoredCheckpoint extends Checkpoint {
  id: number;
  reason: string;
}

export function checkpointBody(c: Pick<Checkpoint, 'origin' | 'size' | 'root' | 'time'>): Buffer {
  return Buffer.from(
    `ecluse-audit-checkpoint/v1\norigin ${c.origin}\nsize ${c.size}\nroot ${c.root}\ntime ${c.time}\n`,
    'utf8',
  );
}

export function checkpointSignatureValid(c: Checkpoint, key: KeyObject): boolean {
  if (c.keyId !== keyIdOf(key)) return false;
  try {
    return verify('sha256', checkpointBody(c), key, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}

export function originOf(db: Db): string {
  return `ecluse/${getSetting(db, 'site_id') ?? 'unset'}`;
}

/** The import station home the database lives in (home.ts), or null for an in-memory database. */
export function homeOf(db: Db): string | null {
  return importHomeOfDatabase(db)?.root ?? null;
}

export function latestCheckpointFile(home: string): string {
  return importHome(home).latestCheckpoint;
}

function rowToCheckpoint(r: {
  id: number;
  origin: string;
  size: number;
  root: string;
  time: string;
  key_id: string;
  signature: string;
  reason: string;
}): StoredCheckpoint {
  return {
    id: r.id,
    origin: r.origin,
    size: r.size,
    root: r.root,
    time: r.time,
    keyId: r.key_id,
    signature: r.signature,
    reason: r.reason,
  };
}

/** A row of `audit_checkpoint` as stored (its signature is checked by verify.ts, not here). */
const checkpointRow = z.object({
  id: z.number().int().positive(),
  origin: z.string(),
  size: z.number().int().nonnegative(),
  root: z.string(),
  time: z.string(),
  key_id: z.string(),
  signature: z.string(),
  reason: z.string(),
});
const CHECKPOINT_ADVICE = 'run "ecluse audit verify" and keep the database for analysis';
const checkpointRows = storedRows('audit_checkpoint', checkpointRow, CHECKPOINT_ADVICE, 'E_AUDIT_CHECKPOINT');

export function listCheckpoints(db: Db): StoredCheckpoint[] {
  return checkpointRows.all(db, 'SELECT * FROM audit_checkpoint ORDER BY id').map(rowToCheckpoint);
}

export function latestCheckpoint(db: Db): StoredCheckpoint | null {
  const r = checkpointRows.get(db, 'SELECT * FROM audit_checkpoint ORDER BY id DESC LIMIT 1');
  return r ? rowToCheckpoint(r) : null;
}

/** The checkpoint the last `ecluse audit export` signed (the next export proves consistency from it), if any. */
export function lastExportedCheckpoint(db: Db): Checkpoint | null {
  const r = checkpointRows.get(
    db,
    `SELECT c.* FROM audit_export e JOIN audit_checkpoint c ON c.id = e.checkpoint_id ORDER BY e.id DESC LIMIT 1`,
  );
  return r ? publicCheckpoint(rowToCheckpoint(r)) : null;
}

const sameCheckpoint = storedRows('audit_checkpoint', z.object({ id: z.number().int() }), CHECKPOINT_ADVICE);

/** Whether checkpoint `id` with this root was committed (a rolled-back transaction leaves none). */
function committed(db: Db, id: number, root: string): boolean {
  return sameCheckpoint.get(db, 'SELECT id FROM audit_checkpoint WHERE id = ? AND root = ?', id, root) !== undefined;
}

export function publicCheckpoint(c: Checkpoint): Checkpoint {
  return { origin: c.origin, size: c.size, root: c.root, time: c.time, keyId: c.keyId, signature: c.signature };
}

/**
 * Signs a checkpoint of the log as it is now (inside the caller's transaction, if any) and keeps a copy of the latest
 * in `<home>/audit/checkpoint.json`, so truncating the database together with its checkpoints is still detected.
 */
export function signCheckpoint(db: Db, home: string, reason: string, now = new Date()): StoredCheckpoint {
  const key = ensureAuditKey(home);
  const f = readFrontier(db);
  const body = { origin: originOf(db), size: f.size, root: frontierRoot(f).toString('hex'), time: now.toISOString() };
  const signature = sign('sha256', checkpointBody(body), key.privateKey).toString('base64');
  const c: Checkpoint = { ...body, keyId: key.keyId, signature };
  const info = db
    .prepare(
      'INSERT INTO audit_checkpoint (origin, size, root, time, key_id, signature, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
    )
    .run(c.origin, c.size, c.root, c.time, c.keyId, c.signature, reason);
  const id = Number(info.lastInsertRowid);
  if (!db.inTransaction) writeLatestFile(home, c);
  else {
    // Only once the transaction has committed: a rolled-back checkpoint must not be left in the file.
    process.nextTick(() => {
      try {
        if (db.open && committed(db, id, c.root)) {
          writeLatestFile(home, c);
        }
      } catch (e) {
        process.stderr.write(`warning: cannot write the latest audit checkpoint file: ${(e as Error).message}\n`);
      }
    });
  }
  return { ...c, id, reason };
}

/** Writes the newest committed checkpoint to `<home>/audit/checkpoint.json` (after a transaction that signed one). */
export function syncLatestFile(db: Db, home: string): void {
  const c = latestCheckpoint(db);
  if (c) writeLatestFile(home, publicCheckpoint(c));
}

function writeLatestFile(home: string, c: Checkpoint): void {
  const file = latestCheckpointFile(home);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o644 });
  fs.renameSync(tmp, file);
}

export function parseCheckpointFile(file: string): Checkpoint {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new EcluseError('E_INPUT', `${file} is not a checkpoint: ${(e as Error).message}`, {}, { cause: e });
  }
  const r = CheckpointSchema.safeParse(raw);
  if (!r.success) throw new EcluseError('E_INPUT', `${file} is not a checkpoint: ${r.error.issues[0]?.message ?? ''}`);
  return r.data;
}

/** The hourly checkpoint: signs one when the newest is older than `maxAgeMs` (or there is none). */
export function checkpointIfStale(db: Db, home: string, maxAgeMs = 3_600_000, now = new Date()): boolean {
  const last = latestCheckpoint(db);
  if (last && now.getTime() - Date.parse(last.time) < maxAgeMs) return false;
  db.transaction(() => signCheckpoint(db, home, 'hourly', now)).immediate();
  syncLatestFile(db, home);
  return true;
}
