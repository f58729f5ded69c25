/**
 * The `image_members` table (tables.ts), all of its SQL: which projects a `shared` image is shared with, and whether
 * each accepted. Rows are checked as they are read (a row the schema does not describe is E_STORE).
 */
import { z } from 'zod';
import { storedRows } from '../../sneakernet/stored-rows.js';
import type { Db } from '../db.js';

export const MEMBER_STATUSES = ['pending', 'accepted', 'rejected'] as const;
export type MemberStatus = (typeof MEMBER_STATUSES)[number];

const memberRow = z.object({
  image_id: z.string(),
  member_id: z.string(),
  status: z.string(),
  created_at: z.string(),
  updated_at: z.string(),
});
export type MemberRow = z.output<typeof memberRow>;

const ADVICE = 'remove the member (openstack image remove project IMAGE PROJECT) and add it again';
const members = storedRows('image_members', memberRow, ADVICE);
const count = storedRows('image_members', z.object({ n: z.number().int().nonnegative() }), ADVICE);

/** The membership of `memberId` in the image, or undefined. */
export function memberOf(db: Db, imageId: string, memberId: string): MemberRow | undefined {
  return members.get(db, 'SELECT * FROM image_members WHERE image_id = ? AND member_id = ?', imageId, memberId);
}

/** Whether the project is a member of the image (whatever its status). */
export function isMember(db: Db, imageId: string, project: string): boolean {
  return memberOf(db, imageId, project) !== undefined;
}

/** The members of an image, oldest first. */
export function membersOf(db: Db, imageId: string): MemberRow[] {
  return members.all(db, 'SELECT * FROM image_members WHERE image_id = ? ORDER BY created_at, member_id', imageId);
}

export function memberCount(db: Db, imageId: string): number {
  return count.get(db, 'SELECT count(*) AS n FROM image_members WHERE image_id = ?', imageId)?.n ?? 0;
}

/** Adds a pending member (the caller checked that it is not one yet). */
export function addMember(db: Db, imageId: string, memberId: string, at: string): void {
  db.prepare(
    "INSERT INTO image_members (image_id, member_id, status, created_at, updated_at) VALUES (?, ?, 'pending', ?, ?)",
  ).run(imageId, memberId, at, at);
}

export function setMemberStatus(db: Db, imageId: string, memberId: string, status: MemberStatus, at: string): void {
  db.prepare('UPDATE image_members SET status = ?, updated_at = ? WHERE image_id = ? AND member_id = ?').run(
    status,
    at,
    imageId,
    memberId,
  );
}

export function removeMember(db: Db, imageId: string, memberId: string): void {
  db.prepare('DELETE FROM image_members WHERE image_id = ? AND member_id = ?').run(imageId, memberId);
}

/** Removes every membership of an image (it is being deleted). */
export function removeMembersOf(db: Db, imageId: string): void {
  db.prepare('DELETE FROM image_members WHERE image_id = ?').run(imageId);
}
