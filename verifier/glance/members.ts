/**
 * Image members (sharing a `shared` image with other projects), enough for `openstack image add project`,
 * `image member list`, `image set --accept`, and `image remove project`; their schemas; and `/v2/info/import`,
 * `/v2/info/stores`.
 *
 * `GET /projects/{id}` (deliberate difference, see test/conformance/differences.ts): with `--os-auth-type none`,
 * openstackclient resolves the project of `image add project` through the identity API at the same endpoint. There is
 * no Keystone here and project ids are opaque: it answers `{"project": {"id": ID, "name": ID, ...}}` for any id.
 */
import express from 'express';
import { glanceTime, type Db } from '../db.js';
import { authOf, requireWriter } from './auth.js';
import { owns, requireOwner, seesAll, visible } from './access.js';
import { readJson } from './body.js';
import { badRequest, conflict, forbidden, GlanceHttpError, sendJson } from './errors.js';
import { checkWritable, findImageOr, IMPORT_METHODS, STORE_ID } from './images-write.js';
import { pyRepr } from './image-attrs.js';
import {
  addMember,
  memberCount,
  memberOf,
  membersOf,
  MEMBER_STATUSES,
  removeMember,
  setMemberStatus,
  type MemberRow,
  type MemberStatus,
} from './image-members.js';

const isMemberStatus = (s: string): s is MemberStatus => (MEMBER_STATUSES as readonly string[]).includes(s);

export const MEMBER_SCHEMA = {
  name: 'member',
  properties: {
    member_id: { type: 'string', description: 'An identifier for the image member (tenantId)' },
    image_id: {
      type: 'string',
      description: 'An identifier for the image',
      pattern: '^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$',
    },
    created_at: { type: 'string', description: 'Date and time of image member creation' },
    updated_at: { type: 'string', description: 'Date and time of last modification of image member' },
    status: {
      type: 'string',
      description: 'The status of this image member',
      enum: ['pending', 'accepted', 'rejected'],
    },
    schema: { readOnly: true, type: 'string' },
  },
} as const;

export const MEMBERS_SCHEMA = {
  name: 'members',
  properties: { members: { type: 'array', items: MEMBER_SCHEMA }, schema: { type: 'string' } },
  links: [{ rel: 'describedby', href: '{schema}' }],
} as const;

export const MAX_MEMBERS = 128;

const memberRecord = (m: MemberRow) => ({
  member_id: m.member_id,
  image_id: m.image_id,
  status: m.status,
  created_at: m.created_at,
  updated_at: m.updated_at,
  schema: '/v2/schemas/member',
});

function getMember(db: Db, imageId: string, memberId: string): MemberRow {
  const m = memberOf(db, imageId, memberId);
  if (!m) throw new GlanceHttpError(404, `${memberId} not found in the member list of the image ${imageId}.`);
  return m;
}

function objectBody(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('Body expected in request.');
  return body as Record<string, unknown>;
}

export function memberRoutes(db: Db): express.Router {
  const router = express.Router({ caseSensitive: true });

  router.get('/v2/schemas/member', (_req, res) => sendJson(res, 200, MEMBER_SCHEMA));
  router.get('/v2/schemas/members', (_req, res) => sendJson(res, 200, MEMBERS_SCHEMA));

  const seen = (res: express.Response, id: string) =>
    visible(db, res, findImageOr(db, id), () => new GlanceHttpError(404, `Image ${id} not found.`));

  router.get('/v2/images/:id/members', (req, res) => {
    const row = seen(res, req.params.id);
    if (row.visibility !== 'shared') {
      throw forbidden(`Not allowed to list members for image ${row.id}: Only shared images have members.`);
    }
    const rows = membersOf(db, row.id);
    // A member project sees its own membership only; the owner (and admins) every member.
    const ctx = authOf(res);
    if (!owns(ctx, row)) rows.splice(0, rows.length, ...rows.filter((m) => m.member_id === ctx.project));
    sendJson(res, 200, { members: rows.map(memberRecord), schema: '/v2/schemas/members' });
  });

  router.get('/v2/images/:id/members/:member', (req, res) => {
    const row = seen(res, req.params.id);
    const ctx = authOf(res);
    if (!owns(ctx, row) && req.params.member !== ctx.project) {
      throw new GlanceHttpError(404, `${req.params.member} not found in the member list of the image ${row.id}.`);
    }
    sendJson(res, 200, memberRecord(getMember(db, row.id, req.params.member)));
  });

  router.post('/v2/images/:id/members', async (req, res) => {
    const body = objectBody(await readJson(req));
    requireWriter(res, 'add_member');
    const row = seen(res, req.params.id);
    requireOwner(res, row, 'add_member');
    checkWritable(db, row);
    const member = body.member;
    if (typeof member !== 'string' || member === '' || member.length > 255) {
      throw badRequest(`Member to be added not specified`);
    }
    if (row.visibility !== 'shared') {
      throw forbidden(`Not allowed to create members for image ${row.id}.`);
    }
    const at = glanceTime();
    const created = db
      .transaction(() => {
        const n = memberCount(db, row.id);
        if (memberOf(db, row.id, member)) throw conflict(`Member ${member} is duplicated for image ${row.id}`);
        if (n >= MAX_MEMBERS)
          throw new GlanceHttpError(413, `Maximum number of image members exceeded (${MAX_MEMBERS}).`);
        addMember(db, row.id, member, at);
        return getMember(db, row.id, member);
      })
      .immediate();
    sendJson(res, 200, memberRecord(created));
  });

  router.put('/v2/images/:id/members/:member', async (req, res) => {
    const body = objectBody(await readJson(req));
    requireWriter(res, 'modify_member');
    const row = seen(res, req.params.id);
    // As Glance: a member's status is set by that member's project (admins too), not by the image's owner.
    const ctx = authOf(res);
    if (!seesAll(ctx) && req.params.member !== ctx.project) {
      throw forbidden(`You are not authorized to complete modify_member action.`);
    }
    if (row.visibility !== 'shared') throw forbidden(`Not allowed to update members for image ${row.id}.`);
    const status = body.status;
    if (typeof status !== 'string' || !isMemberStatus(status)) {
      throw badRequest(
        `Provided object does not match schema 'member': ${pyRepr(status)} is not one of ['pending', 'accepted', 'rejected']`,
      );
    }
    getMember(db, row.id, req.params.member);
    setMemberStatus(db, row.id, req.params.member, status, glanceTime());
    sendJson(res, 200, memberRecord(getMember(db, row.id, req.params.member)));
  });

  router.delete('/v2/images/:id/members/:member', (req, res) => {
    requireWriter(res, 'delete_member');
    const row = seen(res, req.params.id);
    requireOwner(res, row, 'delete_member');
    checkWritable(db, row);
    getMember(db, row.id, req.params.member);
    removeMember(db, row.id, req.params.member);
    res.status(204).end();
  });

  // Discovery of what this server can do.
  router.get('/v2/info/import', (_req, res) =>
    sendJson(res, 200, {
      'import-methods': { description: 'Import methods available.', type: 'array', value: [...IMPORT_METHODS] },
    }),
  );
  router.get('/v2/info/stores', (_req, res) => sendJson(res, 200, { stores: [{ id: STORE_ID, default: 'true' }] }));

  // Identity look-up used by `openstack image add project` without Keystone (see the header comment).
  router.get('/projects/:id', (req, res) => {
    const id = req.params.id;
    if (id.length > 255) throw new GlanceHttpError(404, undefined);
    sendJson(res, 200, {
      project: {
        id,
        name: id,
        domain_id: 'default',
        enabled: true,
        description: '',
        is_domain: false,
        parent_id: null,
      },
    });
  });

  return router;
}
