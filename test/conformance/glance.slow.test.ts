/**
 * Conformance: the same requests to the reference Glance (../shared/peers/real-glance.sh) and to `ecluse serve`,
 * compared response by response (compare.ts). Images are created with the same ids on both, so paths, `self`,
 * `file`, pagination markers and `next` links must be identical. Tolerated differences: differences.ts only.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { world, type World } from '../helpers/world.js';
import { both, send } from './compare.js';
import { DELIBERATE_DIFFERENCES } from './differences.js';
import { startEcluseServe, startRealGlance, type Peer } from './peers.js';

const PATCH_TYPE = 'application/openstack-images-v2.1-json-patch';
const OCTET = 'application/octet-stream';

// Fixed ids (sorted: a < b < c) so both servers hold the same images under the same paths.
const A = 'aaaaaaaa-0000-4000-8000-000000000001';
const B = 'bbbbbbbb-0000-4000-8000-000000000002';
const C = 'cccccccc-0000-4000-8000-000000000003';
const D = 'dddddddd-0000-4000-8000-000000000004';
const MISSING = 'eeeeeeee-0000-4000-8000-000000000005';
const F = 'ffffffff-0000-4000-8000-000000000006';
const G = '99999999-0000-4000-8000-000000000007';
const DATA_A = crypto.randomBytes(256 * 1024 + 3);
const DATA_B = Buffer.from('the bytes of image B\n'.repeat(1000));

let w: World;
let peers: { glance: Peer; ecluse: Peer };

beforeAll(async () => {
  w = await world();
  const [glance, ecluse] = await Promise.all([startRealGlance(w.path('real-glance')), startEcluseServe(w.inside)]);
  peers = { glance, ecluse };
}, 180_000);

afterAll(async () => {
  await Promise.all([peers?.glance.stop(), peers?.ecluse.stop()]);
  w?.cleanup();
});

const cmp = (step: string, r: Parameters<typeof both>[2], o?: Parameters<typeof both>[3]) => both(peers, step, r, o);

describe('conformance with the reference Glance', () => {
  it('lists its deliberate differences in one place, each with a reason', () => {
    expect(DELIBERATE_DIFFERENCES.length).toBeGreaterThan(0);
    for (const d of DELIBERATE_DIFFERENCES) expect(d.why.length, d.id).toBeGreaterThan(20);
  });

  it('discovery: /, /versions, unversioned paths, /v2', async () => {
    await cmp('root', { path: '/' });
    await cmp('versions', { path: '/versions' });
    await cmp('unversioned', { path: '/v1/images' });
    await cmp('v2 redirect', { path: '/v2' });
  });

  it('schemas and info endpoints', async () => {
    const image = await cmp('image schema', { path: '/v2/schemas/image' });
    // identical except for `stores` (difference no-stores-field)
    const props = (r: typeof image.glance) => Object.keys((r.json as { properties: object }).properties).sort();
    expect(props(image.ecluse)).toEqual(props(image.glance).filter((k) => k !== 'stores'));
    await cmp('images schema', { path: '/v2/schemas/images' });
    await cmp('member schema', { path: '/v2/schemas/member' });
    await cmp('members schema', { path: '/v2/schemas/members' });
    await cmp('info import', { path: '/v2/info/import' });
    await cmp('info stores', { path: '/v2/info/stores' });
  });

  it('create: 201 + Location + record; read-only 403; duplicate 409; malformed 400; schema 400', async () => {
    await cmp('create A', {
      method: 'POST',
      path: '/v2/images',
      json: {
        id: A,
        name: 'conf-a',
        disk_format: 'raw',
        container_format: 'bare',
        tags: ['blue', 'green'],
        'owner_specified.openstack.md5': '',
        'owner_specified.openstack.object': 'images/conf-a',
        os_distro: 'debian',
      },
    });
    await cmp('create B', {
      method: 'POST',
      path: '/v2/images',
      json: { id: B, name: 'conf-b', disk_format: 'qcow2', container_format: 'bare', tags: ['green'], min_ram: 512 },
    });
    await cmp('create C (no formats)', {
      method: 'POST',
      path: '/v2/images',
      json: { id: C, name: 'conf-c', protected: true },
    });
    await cmp('create D', {
      method: 'POST',
      path: '/v2/images',
      json: {
        id: D,
        name: 'conf-d',
        disk_format: 'raw',
        container_format: 'bare',
        os_hidden: true,
        visibility: 'private',
      },
    });
    await cmp('duplicate id', { method: 'POST', path: '/v2/images', json: { id: A } });
    const readOnly: [string, unknown][] = [
      ['status', 'active'],
      ['checksum', 'abc'],
      ['size', 5],
      ['virtual_size', 5],
      ['created_at', '2020-01-01T00:00:00Z'],
      ['self', '/x'],
    ];
    for (const [k, v] of readOnly) {
      await cmp(`read-only ${k}`, { method: 'POST', path: '/v2/images', json: { name: 'x', [k]: v } });
    }
    // a wrong type is a schema error before the read-only check
    await cmp(
      'read-only with a wrong type',
      { method: 'POST', path: '/v2/images', json: { size: 'x' } },
      { messageFirstLine: true },
    );
    await cmp(
      'enum before read-only',
      { method: 'POST', path: '/v2/images', json: { status: 'x' } },
      { messageFirstLine: true },
    );
    // os_hash_* are silently ignored on create by the reference server
    await cmp('os_hash_value ignored', {
      method: 'POST',
      path: '/v2/images',
      json: { id: F, name: 'conf-f', os_hash_value: 'x' },
    });
    await cmp('delete F', { method: 'DELETE', path: `/v2/images/${F}` });
    await cmp('reserved', { method: 'POST', path: '/v2/images', json: { deleted: 'x' } });
    await cmp('malformed JSON', { method: 'POST', path: '/v2/images', body: '{"name":', type: 'application/json' });
    await cmp(
      'bad disk_format',
      { method: 'POST', path: '/v2/images', json: { disk_format: 'zzz' } },
      { messageFirstLine: true },
    );
    await cmp('non-string extra', { method: 'POST', path: '/v2/images', json: { foo: 5 } }, { messageFirstLine: true });
  });

  it('upload: 415, 204, 409 when not queued; show; download with Content-MD5; ranges; 416; 204 without data', async () => {
    await cmp('show queued', { path: `/v2/images/${A}` });
    await cmp('download queued', { path: `/v2/images/${A}/file` });
    await cmp('upload wrong type', { method: 'PUT', path: `/v2/images/${A}/file`, body: DATA_A, type: 'text/plain' });
    await cmp('upload A', { method: 'PUT', path: `/v2/images/${A}/file`, body: DATA_A, type: OCTET });
    await cmp('upload B', { method: 'PUT', path: `/v2/images/${B}/file`, body: DATA_B, type: OCTET });
    await cmp('upload D', { method: 'PUT', path: `/v2/images/${D}/file`, body: DATA_B, type: OCTET });
    await cmp('upload again', { method: 'PUT', path: `/v2/images/${A}/file`, body: DATA_A, type: OCTET });
    await cmp('show active', { path: `/v2/images/${A}` });
    await cmp('show qcow2 with non-qcow2 bytes', { path: `/v2/images/${B}` });
    await cmp('download', { path: `/v2/images/${A}/file` });
    await cmp('range a-b', { path: `/v2/images/${A}/file`, headers: { Range: 'bytes=0-99' } });
    await cmp('range suffix', { path: `/v2/images/${A}/file`, headers: { Range: 'bytes=-17' } });
    await cmp('range open', { path: `/v2/images/${A}/file`, headers: { Range: `bytes=${DATA_A.length - 5}-` } });
    await cmp('range 416', { path: `/v2/images/${A}/file`, headers: { Range: `bytes=${DATA_A.length + 10}-` } });
    await cmp('range several', { path: `/v2/images/${A}/file`, headers: { Range: 'bytes=0-1,5-6' } });
  });

  it('list: filters, both sort syntaxes, pagination links, 400s', async () => {
    for (const q of [
      '',
      '?sort=name:asc',
      '?sort_key=name&sort_dir=asc',
      '?sort=name:desc,id:asc',
      '?name=conf-a',
      '?name=in:conf-a,conf-b',
      '?tag=green',
      '?status=queued',
      '?disk_format=qcow2',
      '?size_min=300000',
      '?size_max=300000&sort=name:asc',
      '?os_hidden=true',
      '?visibility=private',
      '?visibility=shared&sort=name:asc',
      '?protected=true',
      '?os_distro=debian',
      '?created_at=gt:2000-01-01T00:00:00Z&sort=name:asc',
      '?member_status=all&sort=name:asc',
    ]) {
      await cmp(`list ${q}`, { path: `/v2/images${q}` });
    }
    await cmp('list ?tag=green&tag=blue', { path: '/v2/images?tag=green&tag=blue' }, { collapseRepeatedInLinks: true });
    // Pagination: follow next with limit=1, both must give the same links page after page.
    let link: string | undefined = '/v2/images?sort=name:asc&limit=1';
    let pages = 0;
    while (link && pages < 10) {
      const { glance } = await cmp(`page ${pages}`, { path: link });
      link = (glance.json as { next?: string }).next;
      pages += 1;
    }
    expect(pages).toBe(4); // conf-a, conf-b, conf-c, then an empty page
    for (const q of [
      '?limit=abc',
      '?limit=-1',
      `?marker=${MISSING}`,
      '?sort=name:asc&sort_key=name',
      '?sort_key=bogus',
      '?sort_dir=sideways',
      '?os_hidden=maybe',
      '?visibility=bogus',
      '?size_min=big',
      '?created_at=gt:yesterday',
    ]) {
      await cmp(`list 400 ${q}`, { path: `/v2/images${q}` });
    }
  });

  it('PATCH: 415 + Accept-Patch, add/replace/remove, 409, 403, 400', async () => {
    const p = (step: string, ops: unknown, type = PATCH_TYPE, o?: Parameters<typeof both>[3]) =>
      cmp(step, { method: 'PATCH', path: `/v2/images/${A}`, json: ops, type }, o);
    await p('wrong media type', [], 'application/json');
    await p('add extra + replace name', [
      { op: 'add', path: '/color', value: 'teal' },
      { op: 'replace', path: '/name', value: 'conf-a2' },
      { op: 'add', path: '/empty', value: '' },
    ]);
    await p('replace existing extra', [{ op: 'replace', path: '/color', value: 'navy' }]);
    await p('remove extra', [{ op: 'remove', path: '/color' }]);
    await p('remove missing extra', [{ op: 'remove', path: '/color' }]);
    await p('replace missing extra', [{ op: 'replace', path: '/nope', value: 'x' }]);
    await p('replace read-only', [{ op: 'replace', path: '/status', value: 'queued' }]);
    await p('remove core', [{ op: 'remove', path: '/name' }]);
    await p('replace disk_format when active', [{ op: 'replace', path: '/disk_format', value: 'qcow2' }]);
    await p('bad op', [{ op: 'move', path: '/name', from: '/x' }]);
    await p('no value', [{ op: 'replace', path: '/name' }]);
    await p('bad pointer', [{ op: 'replace', path: 'name', value: 'x' }]);
    await p('deep pointer', [{ op: 'replace', path: '/a/b', value: 'x' }]);
    await p('not an array', { op: 'add' });
    await p('bad type', [{ op: 'replace', path: '/min_ram', value: '5' }], PATCH_TYPE, { messageFirstLine: true });
    await p('bad visibility', [{ op: 'replace', path: '/visibility', value: 'bogus' }], PATCH_TYPE, {
      messageFirstLine: true,
    });
    await p('tags + booleans', [
      { op: 'replace', path: '/tags', value: ['red'] },
      { op: 'replace', path: '/os_hidden', value: false },
      { op: 'replace', path: '/min_disk', value: 3 },
    ]);
    await p('v2.0 form', [{ replace: '/name', value: 'conf-a' }], 'application/openstack-images-v2.0-json-patch');
    await cmp('patch missing image', {
      method: 'PATCH',
      path: `/v2/images/${MISSING}`,
      json: [],
      type: PATCH_TYPE,
    });
  });

  it('tags, deactivate/reactivate, members', async () => {
    await cmp('tag add', { method: 'PUT', path: `/v2/images/${A}/tags/yellow` });
    await cmp('tag add again', { method: 'PUT', path: `/v2/images/${A}/tags/yellow` });
    await cmp('tag delete', { method: 'DELETE', path: `/v2/images/${A}/tags/red` });
    await cmp('tag delete missing', { method: 'DELETE', path: `/v2/images/${A}/tags/red` });
    await cmp('tag on missing image', { method: 'PUT', path: `/v2/images/${MISSING}/tags/x` });
    await cmp('show after tags', { path: `/v2/images/${A}` });
    await cmp('deactivate queued', { method: 'POST', path: `/v2/images/${C}/actions/deactivate` });
    await cmp('deactivate', { method: 'POST', path: `/v2/images/${B}/actions/deactivate` });
    await cmp('show deactivated', { path: `/v2/images/${B}` });
    await cmp('download deactivated (admin)', { path: `/v2/images/${B}/file` });
    await cmp('reactivate', { method: 'POST', path: `/v2/images/${B}/actions/reactivate` });
    await cmp('unknown action', { method: 'POST', path: `/v2/images/${B}/actions/explode` });
    await cmp('member add', { method: 'POST', path: `/v2/images/${A}/members`, json: { member: 'project-1' } });
    await cmp('member add again', { method: 'POST', path: `/v2/images/${A}/members`, json: { member: 'project-1' } });
    await cmp('member list', { path: `/v2/images/${A}/members` });
    await cmp('member show', { path: `/v2/images/${A}/members/project-1` });
    await cmp('member accept', {
      method: 'PUT',
      path: `/v2/images/${A}/members/project-1`,
      json: { status: 'accepted' },
    });
    await cmp('member remove', { method: 'DELETE', path: `/v2/images/${A}/members/project-1` });
    await cmp('member show missing', { path: `/v2/images/${A}/members/project-1` });
    await cmp('member add without member', { method: 'POST', path: `/v2/images/${A}/members`, json: {} });
    await cmp('member on missing image', { path: `/v2/images/${MISSING}/members` });
    // a private image has no members
    await cmp('create private', {
      method: 'POST',
      path: '/v2/images',
      json: { id: G, name: 'conf-g', visibility: 'private' },
    });
    await cmp('members of private', { path: `/v2/images/${G}/members` });
    await cmp('member add to private', { method: 'POST', path: `/v2/images/${G}/members`, json: { member: 'p' } });
    await cmp('member update on private', {
      method: 'PUT',
      path: `/v2/images/${G}/members/p`,
      json: { status: 'accepted' },
    });
    await cmp(
      'tag too long',
      { method: 'PUT', path: `/v2/images/${G}/tags/${'x'.repeat(256)}` },
      { messageFirstLine: true },
    );
    await cmp('delete private', { method: 'DELETE', path: `/v2/images/${G}` });
  });

  it('404s, 405, error formats, delete and protected', async () => {
    await cmp('show missing', { path: `/v2/images/${MISSING}` });
    await cmp('show non-uuid', { path: '/v2/images/conf-a' });
    await cmp('download missing', { path: `/v2/images/${MISSING}/file` });
    await cmp('unknown v2 path', { path: '/v2/nothing-here' });
    await cmp('405', { method: 'DELETE', path: '/v2/images' });
    for (const accept of ['*/*', 'text/html', 'application/json', 'text/plain']) {
      const g = await send(peers.glance, { path: `/v2/images/${MISSING}`, headers: { Accept: accept } });
      const e = await send(peers.ecluse, { path: `/v2/images/${MISSING}`, headers: { Accept: accept } });
      expect
        .soft(e.headers.get('content-type'), `error format for Accept ${accept}`)
        .toBe(g.headers.get('content-type'));
      expect.soft(e.raw.toString(), `error body for Accept ${accept}`).toBe(g.raw.toString());
    }
    await cmp('delete protected', { method: 'DELETE', path: `/v2/images/${C}` });
    await cmp('unprotect', {
      method: 'PATCH',
      path: `/v2/images/${C}`,
      json: [{ op: 'replace', path: '/protected', value: false }],
      type: PATCH_TYPE,
    });
    await cmp('delete', { method: 'DELETE', path: `/v2/images/${C}` });
    await cmp('show deleted', { path: `/v2/images/${C}` });
    await cmp('delete again', { method: 'DELETE', path: `/v2/images/${C}` });
    await cmp('delete non-uuid', { method: 'DELETE', path: '/v2/images/nope' });
    await cmp('list after delete', { path: '/v2/images?sort=name:asc' });
    // the deleted image's data is gone from the écluse store
    expect(fs.existsSync(path.join(w.inside, 'store', 'images', C))).toBe(false);
  });
});
