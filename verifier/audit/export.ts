/**
 * `ecluse audit export --to DIR [--since CHECKPOINT]`: carries the log out of the air gap. DIR receives
 *   events.jsonl     one event per line from `firstIndex` (all events, or those after --since), each with its index
 *   checkpoint.json  a checkpoint signed now, covering every event
 *   consistency.json the RFC 9162 consistency proof from the previous export's checkpoint (or --since) to this one
 *   export.json      format, origin, firstIndex, size, and the frontier of the events left out (with --since)
 *   audit-key.pub.pem the audit public key (for convenience: verify with a copy obtained independently)
 */
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError } from '../../sneakernet/errors.js';
import type { Db } from '../db.js';
import { canonicalEvent } from './canonical.js';
import { eventsOfLeaves } from './events.js';
import {
  lastExportedCheckpoint,
  publicCheckpoint,
  signCheckpoint,
  syncLatestFile,
  type Checkpoint,
} from './checkpoint.js';
import { ensureAuditKey } from './key.js';
import { appendAudit } from './log.js';
import { leafHashes } from './tree.js';
import { consistencyProof, frontierOf, rootOf, serializeFrontier } from './merkle.js';
import { verifyLog } from './verify.js';

export const EXPORT_FORMAT = 'ecluse-audit-export/1';

export interface ExportManifest {
  format: typeof EXPORT_FORMAT;
  origin: string;
  firstIndex: number;
  size: number;
  /** `[[subtree size, hex hash], ...]`: the perfect subtrees of the events before firstIndex. */
  prefix: Array<[number, string]>;
}

export interface ConsistencyFile {
  from: Checkpoint;
  toSize: number;
  proof: string[];
}

export interface ExportResult {
  dir: string;
  checkpoint: Checkpoint;
  firstIndex: number;
  events: number;
  consistencyFrom: Checkpoint | null;
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.partial`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

function previousExport(db: Db): Checkpoint | null {
  return lastExportedCheckpoint(db);
}

/**
 * An earlier export in DIR holds the checkpoint the next `verify-export --previous` needs: writing over it would
 * destroy that link of the chain. Refused; the operator names a new folder.
 */
function refuseOverwrite(dir: string): void {
  const found = ['checkpoint.json', 'export.json', 'events.jsonl'].find((f) => fs.existsSync(path.join(dir, f)));
  if (!found) return;
  throw new EcluseError(
    'E_USAGE',
    `${dir} already holds an audit export (${found}): its checkpoint is what the next "verify-export --previous" needs; export to a new folder, e.g. ${dir}-${new Date().toISOString().slice(0, 10)}`,
    { check: 'export-folder', dir },
  );
}

export function exportAudit(db: Db, home: string, o: { to: string; since?: Checkpoint }): ExportResult {
  verifyLog(db, home);
  const key = ensureAuditKey(home);
  const dir = path.resolve(o.to);
  refuseOverwrite(dir);
  fs.mkdirSync(dir, { recursive: true });
  const previous = o.since ?? previousExport(db);
  const checkpoint = db
    .transaction(() => {
      appendAudit(db, {
        kind: 'audit.exported',
        outcome: 'info',
        message: `audit log exported to ${dir}${previous ? ` (consistency from size ${previous.size})` : ''}`,
        details: { dir, since: previous?.size ?? null },
      });
      const c = signCheckpoint(db, home, 'export');
      db.prepare('INSERT INTO audit_export (at, dir, checkpoint_id) VALUES (?, ?, ?)').run(c.time, dir, c.id);
      return c;
    })
    .immediate();
  syncLatestFile(db, home);

  const leaves = leafHashes(db, checkpoint.size);
  if (rootOf(leaves).toString('hex') !== checkpoint.root) {
    throw new EcluseError('E_AUDIT_TAMPERED', 'the stored leaves do not match the checkpoint just signed', {
      check: 'audit-log',
    });
  }
  let consistencyFrom: Checkpoint | null = null;
  if (previous && previous.size > 0) {
    if (previous.size > checkpoint.size || rootOf(leaves, 0, previous.size).toString('hex') !== previous.root) {
      throw new EcluseError(
        'E_AUDIT_CONSISTENCY',
        `the checkpoint of size ${previous.size} given as the previous export is not a prefix of this log`,
        { check: 'audit-consistency' },
      );
    }
    const proof = consistencyProof(leaves, previous.size, checkpoint.size).map((b) => b.toString('hex'));
    const file: ConsistencyFile = { from: publicCheckpoint(previous), toSize: checkpoint.size, proof };
    writeAtomic(path.join(dir, 'consistency.json'), `${JSON.stringify(file, null, 2)}\n`);
    consistencyFrom = publicCheckpoint(previous);
  } else {
    fs.rmSync(path.join(dir, 'consistency.json'), { force: true });
  }
  const firstIndex = o.since ? o.since.size : 0;
  const eventsFile = path.join(dir, 'events.jsonl');
  const fd = fs.openSync(`${eventsFile}.partial`, 'w');
  let count = 0;
  try {
    const rows = eventsOfLeaves(db, firstIndex, checkpoint.size);
    let chunk: string[] = [];
    for (const r of rows) {
      const c = canonicalEvent(r);
      chunk.push(`{"index":${r.idx},"seq":${r.seq},${c.slice(1)}\n`);
      count++;
      if (chunk.length >= 4096) {
        fs.writeSync(fd, chunk.join(''));
        chunk = [];
      }
    }
    fs.writeSync(fd, chunk.join(''));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(`${eventsFile}.partial`, eventsFile);
  const manifest: ExportManifest = {
    format: EXPORT_FORMAT,
    origin: checkpoint.origin,
    firstIndex,
    size: checkpoint.size,
    prefix: JSON.parse(serializeFrontier(frontierOf(leaves, firstIndex))) as Array<[number, string]>,
  };
  writeAtomic(path.join(dir, 'export.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeAtomic(path.join(dir, 'checkpoint.json'), `${JSON.stringify(publicCheckpoint(checkpoint), null, 2)}\n`);
  writeAtomic(path.join(dir, 'audit-key.pub.pem'), key.publicPem);
  return { dir, checkpoint: publicCheckpoint(checkpoint), firstIndex, events: count, consistencyFrom };
}
