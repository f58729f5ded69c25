/**
 * `ecluse audit verify-export DIR --key AUDIT_PUBLIC_KEY [--previous CHECKPOINT]`: runs anywhere, needs only the
 * export folder and the audit public key. Recomputes every leaf from events.jsonl (starting from the signed prefix
 * when the export is incremental), checks the root against the signed checkpoint, and proves with the RFC 9162
 * consistency proof that the log of the previous checkpoint was only ever appended to.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { EcluseError, type ErrorCode } from '../../sneakernet/errors.js';
import { canonicalEvent } from './canonical.js';
import { checkpointSignatureValid, CheckpointSchema, parseCheckpointFile, type Checkpoint } from './checkpoint.js';
import { appendLeaf, frontierRoot, leafHash, verifyConsistency, type Frontier } from './merkle.js';
import { EXPORT_FORMAT } from './export.js';

const ManifestSchema = z.strictObject({
  format: z.literal(EXPORT_FORMAT),
  origin: z.string(),
  firstIndex: z.number().int().nonnegative(),
  size: z.number().int().nonnegative(),
  prefix: z.array(z.tuple([z.number().int().positive(), z.string().regex(/^[0-9a-f]{64}$/)])),
});

const ConsistencySchema = z.strictObject({
  from: CheckpointSchema,
  toSize: z.number().int().nonnegative(),
  proof: z.array(z.string().regex(/^[0-9a-f]{64}$/)),
});

const EventSchema = z.strictObject({
  index: z.number().int().nonnegative(),
  seq: z.number().int(),
  at: z.string(),
  kind: z.string(),
  outcome: z.string(),
  code: z.string().nullable(),
  message: z.string(),
  bundle_id: z.string().nullable(),
  station: z.string().nullable(),
  artifact: z.string().nullable(),
  media: z.string().nullable(),
  details: z.string(),
});

export interface ExportVerification {
  origin: string;
  checkpoint: Checkpoint;
  firstIndex: number;
  events: number;
  /** The checkpoint this export was proven consistent with (--previous, or the one in consistency.json). */
  consistentWith: Checkpoint | null;
}

function fail(code: ErrorCode, message: string, index?: number): never {
  throw new EcluseError(code, message, { check: 'audit-export', ...(index === undefined ? {} : { index }) });
}

function readJson<T>(file: string, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail('E_INPUT', `${file}: ${(e as Error).message}`);
  }
  const r = schema.safeParse(raw);
  if (!r.success) fail('E_INPUT', `${file} is malformed: ${r.error.issues[0]?.message ?? ''}`);
  return r.data;
}

function checkSigned(c: Checkpoint, key: KeyObject, what: string): void {
  if (!checkpointSignatureValid(c, key))
    fail('E_AUDIT_CHECKPOINT', `${what} (size ${c.size}) is not signed by the given audit key`);
}

export async function verifyExport(dir: string, key: KeyObject, previousFile?: string): Promise<ExportVerification> {
  if (!fs.existsSync(path.join(dir, 'export.json'))) fail('E_INPUT', `${dir} holds no audit export (export.json)`);
  const manifest = readJson(path.join(dir, 'export.json'), ManifestSchema);
  const checkpoint = parseCheckpointFile(path.join(dir, 'checkpoint.json'));
  checkSigned(checkpoint, key, 'checkpoint.json');
  if (checkpoint.origin !== manifest.origin || checkpoint.size !== manifest.size) {
    fail('E_AUDIT_CHECKPOINT', 'export.json and checkpoint.json disagree on origin or size');
  }
  const consistencyPath = path.join(dir, 'consistency.json');
  const consistency = fs.existsSync(consistencyPath) ? readJson(consistencyPath, ConsistencySchema) : null;
  const previous = previousFile ? parseCheckpointFile(previousFile) : (consistency?.from ?? null);
  if (previous) {
    checkSigned(previous, key, previousFile ? 'the previous checkpoint' : 'consistency.json "from"');
    if (previous.origin !== checkpoint.origin)
      fail('E_AUDIT_CONSISTENCY', `the previous checkpoint is of ${previous.origin}, not ${checkpoint.origin}`);
    if (previous.size > checkpoint.size)
      fail('E_AUDIT_CONSISTENCY', `the log shrank from ${previous.size} to ${checkpoint.size} events`, checkpoint.size);
  }

  // The events: start from the signed prefix (incremental export) and append each leaf.
  const f: Frontier = {
    size: manifest.firstIndex,
    nodes: manifest.prefix.map(([s, h]) => ({ size: s, hash: Buffer.from(h, 'hex') })),
  };
  if (manifest.prefix.reduce((n, [s]) => n + s, 0) !== manifest.firstIndex)
    fail('E_INPUT', 'export.json prefix does not cover firstIndex');
  if (manifest.firstIndex > 0) {
    if (!previous || previous.size !== manifest.firstIndex) {
      fail(
        'E_AUDIT_CONSISTENCY',
        `this export starts at event ${manifest.firstIndex}: give the checkpoint it continues with --previous`,
      );
    }
    if (frontierRoot(f).toString('hex') !== previous.root)
      fail('E_AUDIT_CONSISTENCY', 'the prefix of this export does not match the previous checkpoint', 0);
  }
  let rootAtPrevious: string | null =
    previous && previous.size === manifest.firstIndex ? frontierRoot(f).toString('hex') : null;
  const lines = readline.createInterface({
    input: fs.createReadStream(path.join(dir, 'events.jsonl')),
    crlfDelay: Infinity,
  });
  let index = manifest.firstIndex;
  for await (const line of lines) {
    if (line === '') continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      fail('E_AUDIT_TAMPERED', `events.jsonl line for event ${index} is not JSON`, index);
    }
    const r = EventSchema.safeParse(parsed);
    if (!r.success) fail('E_AUDIT_TAMPERED', `event ${index} in events.jsonl is malformed`, index);
    if (r.data.index !== index) {
      fail(
        r.data.index > index ? 'E_AUDIT_MISSING' : 'E_AUDIT_ORDER',
        `events.jsonl has event ${r.data.index} where event ${index} belongs`,
        index,
      );
    }
    appendLeaf(f, leafHash(Buffer.from(canonicalEvent(r.data), 'utf8')));
    index++;
    if (previous && index === previous.size) rootAtPrevious = frontierRoot(f).toString('hex');
  }
  if (index < checkpoint.size)
    fail('E_AUDIT_MISSING', `events.jsonl ends at event ${index}; the checkpoint covers ${checkpoint.size}`, index);
  if (index > checkpoint.size)
    fail('E_AUDIT_TAMPERED', `events.jsonl holds events beyond the checkpoint's ${checkpoint.size}`, checkpoint.size);
  if (frontierRoot(f).toString('hex') !== checkpoint.root) {
    fail(
      'E_AUDIT_TAMPERED',
      `the events do not hash to the signed root of size ${checkpoint.size}: an event was edited, removed or moved`,
      manifest.firstIndex,
    );
  }
  if (previous && previous.size > 0) {
    if (consistency && consistency.from.size === previous.size && consistency.from.root === previous.root) {
      const ok = verifyConsistency(
        previous.size,
        checkpoint.size,
        Buffer.from(previous.root, 'hex'),
        Buffer.from(checkpoint.root, 'hex'),
        consistency.proof.map((h) => Buffer.from(h, 'hex')),
      );
      if (!ok || consistency.toSize !== checkpoint.size)
        fail(
          'E_AUDIT_CONSISTENCY',
          `the consistency proof from size ${previous.size} to ${checkpoint.size} does not verify`,
        );
    } else if (rootAtPrevious !== previous.root) {
      fail(
        'E_AUDIT_CONSISTENCY',
        `the log of size ${previous.size} is not a prefix of this export: history was rewritten`,
      );
    }
    if (rootAtPrevious !== null && rootAtPrevious !== previous.root) {
      fail(
        'E_AUDIT_CONSISTENCY',
        `the first ${previous.size} events do not match the previous checkpoint: history was rewritten`,
      );
    }
  }
  return {
    origin: checkpoint.origin,
    checkpoint,
    firstIndex: manifest.firstIndex,
    events: index - manifest.firstIndex,
    consistentWith: previous,
  };
}
