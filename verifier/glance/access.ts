/**
 * What a Keystone user sees and may change, as Glance decides it (its default policy at a site that keeps the legacy
 * defaults, as Debian's does):
 *   - admins see and change everything;
 *   - others see `public` and `community` images, their project's own, and `shared` images their project is a member
 *     of; a listing shows community images only when asked for, and shared ones only once accepted (unless
 *     `member_status` says otherwise);
 *   - a project's `member` changes only its own images (a `reader` changes nothing), may not make an image public, and
 *     may not create an image owned by another project.
 * Requests with écluse's own tokens or from loopback without Keystone carry no project and see everything (their
 * role alone decides what they may change), as today.
 */
import type express from 'express';
import type { Db } from '../db.js';
import type { ImageRow } from '../image-catalog.js';
import { authOf, requireWriter, type AuthContext } from './auth.js';
import { forbidden, GlanceHttpError } from './errors.js';
import type { Filter } from './list-query.js';
import { isMember } from './image-members.js';

/** True when the request is not confined to a project (admin, écluse token, loopback without Keystone). */
export function seesAll(ctx: AuthContext): boolean {
  return ctx.project === undefined || ctx.role === 'admin';
}

export function canSee(db: Db, ctx: AuthContext, row: ImageRow): boolean {
  if (seesAll(ctx)) return true;
  if (row.visibility === 'public' || row.visibility === 'community') return true;
  if (ctx.project && row.owner === ctx.project) return true;
  return row.visibility === 'shared' && !!ctx.project && isMember(db, row.id, ctx.project);
}

/** The image if the request may see it, else the 404 the caller names (Glance never says an image exists). */
export function visible(db: Db, res: express.Response, row: ImageRow, notFound: () => GlanceHttpError): ImageRow {
  if (!canSee(db, authOf(res), row)) throw notFound();
  return row;
}

export function owns(ctx: AuthContext, row: ImageRow): boolean {
  return seesAll(ctx) || (!!ctx.project && row.owner === ctx.project);
}

/** 403 in Glance's policy words unless the request may change this image (a writer that owns it, or an admin). */
export function requireOwner(res: express.Response, row: ImageRow, action: string): void {
  requireWriter(res, action);
  if (!owns(authOf(res), row)) throw forbidden(`You are not authorized to complete ${action} action.`);
}

/** 403 unless the request may give an image this visibility and owner (create and PATCH). */
export function checkPublish(res: express.Response, visibility: unknown, owner: unknown, created: boolean): void {
  const ctx = authOf(res);
  if (ctx.role === 'admin' || ctx.project === undefined) return;
  if (visibility === 'public') throw forbidden('You are not authorized to complete publicize_image action.');
  if (created && owner !== null && owner !== undefined && owner !== ctx.project) {
    throw forbidden(
      `You are not permitted to create images owned by '${typeof owner === 'string' ? owner : JSON.stringify(owner)}'.`,
    );
  }
}

/** The listing condition for a project-confined request (none for the others). */
export function listScope(ctx: AuthContext, params: URLSearchParams): Filter | undefined {
  if (seesAll(ctx)) return undefined;
  const project = ctx.project ?? '';
  const status = params.get('member_status') ?? 'accepted';
  const memberCond =
    status === 'all'
      ? 'EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id AND m.member_id = ?)'
      : 'EXISTS (SELECT 1 FROM image_members m WHERE m.image_id = images.id AND m.member_id = ? AND m.status = ?)';
  const memberValues = status === 'all' ? [project] : [project, status];
  // Shared images listed as the member asked (accepted by default); with visibility=shared the owner's own shared
  // images too, as Glance lists them.
  return {
    kind: 'sql',
    sql: `images.visibility IN ('public', 'community') OR images.owner = ? OR (images.visibility = 'shared' AND ${memberCond})`,
    values: [project, ...memberValues],
  };
}
