/**
 * `ecluse audit verify`: recomputes every leaf from the events as stored, rebuilds the tree, and checks every signed
 * checkpoint (signature by the audit key, root at its size) and the latest checkpoint kept beside the database.
 * The first problem is thrown as an EcluseError with a stable code and `context.index`, the first bad leaf index:
 *   E_AUDIT_TAMPERED   an event no longer hashes to its leaf (edited), or the tree differs from a signed checkpoint
 *   E_AUDIT_MISSING    an event or leaf was deleted, or the log is shorter than a checkpoint says (truncated)
 *   E_AUDIT_ORDER      an event sits at another index than the one it was logged at (swapped, reordered)
 *   E_AUDIT_CHECKPOINT a checkpoint is not signed by the audit key (forged) or names another origin
 */
import fs from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { EcluseError, type ErrorCode } from '../../sneakernet/errors.js';
import { checkDatabaseIntegrity, type Db } from '../db.js';
import { eventLeaf } from './canonical.js';
import { auditEventRow, firstUnloggedEvent } from './events.js';
import { leavesWithEvents, otherIndexOfLeaf } from './tree.js';
import {
  checkpointSignatureValid,
  latestCheckpointFile,
  listCheckpoints,
  originOf,
  parseCheckpointFile,
  type Checkpoint,
  type StoredCheckpoint,
} from './checkpoint.js';
import { loadAuditPublicKey } from './key.js';
import { appendLeaf, emptyFrontier, frontierRoot } from './merkle.js';

export interface LogStatus {
  size: number;
  root: string;
  checkpoints: number;
  latest: Checkpoint | null;
  verifiedAt: string;
}

function fail(code: ErrorCode, index: number, message: string, extra: Record<string, unknown> = {}): never {
  throw new EcluseError(code, message, { check: 'audit-log', index, ...extra });
}

function checkCheckpoint(c: Checkpoint, key: KeyObject | null, origin: string, what: string): void {
  if (!key) fail('E_AUDIT_CHECKPOINT', 0, `${what} exists but this station has no audit key to check it with`);
  if (!checkpointSignatureValid(c, key)) {
    fail('E_AUDIT_CHECKPOINT', c.size, `${what} (size ${c.size}) is not signed by this station's audit key: forged`);
  }
  if (c.origin !== origin) fail('E_AUDIT_CHECKPOINT', c.size, `${what} names origin ${c.origin}, not ${origin}`);
}

export function verifyLog(db: Db, home: string | null): LogStatus {
  checkDatabaseIntegrity(db); // damaged pages: the rows still readable prove nothing
  const key = home ? loadAuditPublicKey(home) : null;
  const origin = originOf(db);
  const stored = listCheckpoints(db);
  const fileCheckpoint =
    home && fs.existsSync(latestCheckpointFile(home)) ? parseCheckpointFile(latestCheckpointFile(home)) : null;
  const all: Array<{ c: Checkpoint; what: string }> = stored.map((c: StoredCheckpoint) => ({
    c,
    what: `checkpoint #${c.id}`,
  }));
  if (fileCheckpoint) all.push({ c: fileCheckpoint, what: 'the latest checkpoint file' });
  for (const { c, what } of all) checkCheckpoint(c, key, origin, what);
  const bySize = new Map<number, Array<{ c: Checkpoint; what: string }>>();
  for (const x of all) bySize.set(x.c.size, [...(bySize.get(x.c.size) ?? []), x]);
  const sizes = [...bySize.keys()].sort((a, b) => a - b);

  const f = emptyFrontier();
  let lastGood = 0; // the largest checkpoint size whose root matched
  const checkAt = (size: number) => {
    if (!bySize.has(size)) return;
    const root = frontierRoot(f).toString('hex');
    for (const { c, what } of bySize.get(size) ?? []) {
      if (c.root !== root) {
        fail(
          'E_AUDIT_TAMPERED',
          lastGood,
          `the log's first ${size} events do not match ${what}: an event in [${lastGood}, ${size}) was changed, removed or moved and its leaf recomputed`,
          { range: [lastGood, size] },
        );
      }
    }
    if (bySize.has(size)) lastGood = size;
  };
  checkAt(0);

  let i = 0;
  let prevSeq = 0;
  for (const r of leavesWithEvents(db)) {
    if (r.idx !== i) fail('E_AUDIT_MISSING', i, `leaf ${i} of the log is missing (the next is leaf ${r.idx})`);
    if (r.event === null) fail('E_AUDIT_MISSING', i, `event ${i} of the log (seq ${r.leafSeq}) was deleted`);
    if (r.leafSeq <= prevSeq) fail('E_AUDIT_ORDER', i, `event ${i} (seq ${r.leafSeq}) is logged after seq ${prevSeq}`);
    prevSeq = r.leafSeq;
    const event = auditEventRow.safeParse(r.event);
    if (!event.success) {
      const column = event.error.issues[0]?.path.join('.') ?? 'a column';
      fail('E_AUDIT_TAMPERED', i, `event ${i} (seq ${r.leafSeq}) was edited: its ${column} is not what écluse writes`, {
        column,
      });
    }
    const leaf = eventLeaf(event.data);
    if (!leaf.equals(r.leaf)) {
      const moved = otherIndexOfLeaf(db, leaf, i);
      if (moved !== undefined)
        fail(
          'E_AUDIT_ORDER',
          i,
          `event ${i} (seq ${r.leafSeq}) is the event logged at index ${moved}: the log was reordered`,
          { loggedAt: moved },
        );
      fail(
        'E_AUDIT_TAMPERED',
        i,
        `event ${i} (seq ${r.leafSeq}, ${event.data.kind}) was edited: it no longer hashes to its logged leaf`,
      );
    }
    appendLeaf(f, leaf);
    i++;
    checkAt(i);
  }
  const unlogged = firstUnloggedEvent(db);
  if (unlogged && unlogged.seq < prevSeq) {
    fail('E_AUDIT_TAMPERED', i, `event seq ${unlogged.seq} (${unlogged.kind}) was inserted into the log's history`);
  }
  const beyond = sizes.filter((s) => s > i);
  if (beyond.length > 0) {
    fail(
      'E_AUDIT_MISSING',
      i,
      `the log holds ${i} events but a signed checkpoint covers ${Math.max(...beyond)}: truncated from index ${i}`,
    );
  }
  const latest = stored[stored.length - 1] ?? null;
  return {
    size: i,
    root: frontierRoot(f).toString('hex'),
    checkpoints: stored.length,
    latest: latest
      ? {
          origin: latest.origin,
          size: latest.size,
          root: latest.root,
          time: latest.time,
          keyId: latest.keyId,
          signature: latest.signature,
        }
      : null,
    verifiedAt: new Date().toISOString(),
  };
}
