/**
 * The `target_pushes` table, all of its SQL: one row per (target, image) saying where the push of that image stands.
 * Rows are validated when read (a row the schema does not describe is E_STORE, never an unchecked cast).
 */
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { glanceTime, type Db } from '../db.js';

export const PUSH_STATUSES = ['pending', 'active', 'failed'] as const;
export type PushStatus = (typeof PUSH_STATUSES)[number];

const pushRow = z.object({
  target: z.string(),
  image_id: z.string(),
  remote_id: z.string().nullable(),
  status: z.enum(PUSH_STATUSES),
  message: z.string(),
  attempts: z.number().int().nonnegative(),
  updated_at: z.string(),
});
export type PushRecord = z.infer<typeof pushRow>;

/** Records where the push of `imageId` to `target` stands (one row per pair, replaced each time). */
export function recordPush(
  db: Db,
  r: {
    target: string;
    imageId: string;
    remoteId: string | null;
    status: PushStatus;
    message: string;
    attempts: number;
  },
): void {
  db.prepare(
    `INSERT INTO target_pushes (target, image_id, remote_id, status, message, attempts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT(target, image_id) DO UPDATE SET remote_id = excluded.remote_id, status = excluded.status,
       message = excluded.message, attempts = excluded.attempts, updated_at = excluded.updated_at`,
  ).run(r.target, r.imageId, r.remoteId, r.status, r.message, r.attempts, glanceTime());
}

/** The pushes of one target (by time), or of all (by target, then time). */
export function pushRecords(db: Db, target?: string): PushRecord[] {
  const rows: unknown[] = target
    ? db.prepare('SELECT * FROM target_pushes WHERE target = ? ORDER BY updated_at, image_id').all(target)
    : db.prepare('SELECT * FROM target_pushes ORDER BY target, updated_at, image_id').all();
  return rows.map((row) => {
    const r = pushRow.safeParse(row);
    if (r.success) return r.data;
    const issue = r.error.issues[0];
    throw new EcluseError(
      'E_STORE',
      `a row of target_pushes is malformed (${issue ? `${issue.path.join('.')}: ${issue.message}` : 'unreadable'}): push the image again with "ecluse target push" to rewrite it`,
      { check: 'catalog-row', table: 'target_pushes' },
    );
  });
}
