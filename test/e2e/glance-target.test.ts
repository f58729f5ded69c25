/**
 * Staging into a site's own Glance: `ecluse target add glance URL` pointing at the real Glance peer; an import pushes
 * the verified image into it (properties, provenance and signatures), waits for active, checks checksum and sha512,
 * records the remote id and audits. `openstack image save` from the real Glance gives bytes whose img_signature
 * verifies with cursive against `ecluse site cert --der`. A target that cannot be reached fails the push (retried,
 * recorded, audited), never the import.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cursiveVerify } from '../conformance/cursive.js';
import { clientEnv, freePort, runClient, startRealGlance, type Peer } from '../conformance/peers.js';
import { auditSince, ecluse, ecluseOk, md5, sha256, sha512, world, type World } from '../helpers/world.js';

interface TargetList {
  targets: {
    name: string;
    pushes: { image_id: string; remote_id: string | null; status: string; attempts: number }[];
  }[];
}

describe('staging imported images into the real Glance', () => {
  let w: World;
  let glance: Peer;
  let home: string;

  beforeAll(async () => {
    w = await world();
    glance = await startRealGlance(w.path('real-glance'));
    home = w.path('client-home');
    fs.mkdirSync(home);
  }, 180_000);

  afterAll(async () => {
    await glance?.stop();
    w?.cleanup();
  });

  it('pushes, waits for active, matches digests, records the remote id; the signature verifies from there', async () => {
    const added = await ecluseOk(
      [
        'target',
        'add',
        'glance',
        glance.url,
        '--name',
        'lab',
        '--visibility',
        'shared',
        '--signatures',
        'after-upload',
        '--json',
      ],
      { home: w.inside },
    );
    expect(added.json).toMatchObject({ ok: true, target: { name: 'lab', url: glance.url, auth: { type: 'none' } } });
    // (the lab Glance has no Barbican: with the default --signatures at-create it refuses the upload, as a real
    // Glance does when it cannot fetch the certificate; after-upload adds the properties once the image is active)
    const img = await w.addImage('staged-image', '2.0.0', 3 * 1024 * 1024 + 1);
    await w.exportTo(w.path('media1'));
    const r = await w.importJson(w.path('media1'));
    expect(r.code, r.stderr).toBe(0);
    const localId = (r.json as { images: { id: string }[] }).images[0]!.id;

    const list = (await ecluseOk(['target', 'list', '--json'], { home: w.inside })).json as TargetList;
    const push = list.targets[0]!.pushes[0]!;
    expect(push, JSON.stringify(push)).toMatchObject({ image_id: localId, status: 'active', attempts: 1 });
    const remoteId = push.remote_id!;

    const remote = (await (await fetch(`${glance.url}/v2/images/${remoteId}`)).json()) as Record<string, unknown>;
    expect(remote).toMatchObject({
      name: 'staged-image',
      status: 'active',
      checksum: md5(img.bytes),
      os_hash_algo: 'sha512',
      os_hash_value: sha512(img.bytes),
      size: img.bytes.length,
      ecluse_version: '2.0.0',
      ecluse_image_id: localId,
      img_signature_key_type: 'RSA-PSS',
      img_signature_hash_method: 'SHA-256',
    });
    expect(remote.ecluse_bundle_id).toEqual(expect.any(String));
    expect(auditSince(w.inside).some((a) => a.kind === 'target.pushed' && a.message.includes(remoteId))).toBe(true);
    // The push result is reported by the import itself (--json `targets`) and in one audit line.
    expect((r.json as { targets: unknown }).targets).toEqual([
      { target: 'lab', imageId: localId, outcome: 'pushed', remoteId, error: null },
    ]);
    expect(auditSince(w.inside).filter((a) => a.kind === 'import.targets')).toEqual([
      expect.objectContaining({ outcome: 'info', code: null }),
    ]);

    await ecluseOk(['site', 'cert', '--der', '--out', w.path('signing.der')], { home: w.inside });
    await runClient(
      'openstack',
      [
        '--os-auth-type',
        'none',
        '--os-endpoint',
        glance.url,
        'image',
        'save',
        '--file',
        w.path('from-glance.raw'),
        remoteId,
      ],
      clientEnv(home),
    );
    expect(sha256(fs.readFileSync(w.path('from-glance.raw')))).toBe(sha256(img.bytes));
    expect(await cursiveVerify(w.path('signing.der'), w.path('from-glance.raw'), remote, home)).toBe('VERIFIED True');
  });

  it('an unreachable target fails the push (retried, recorded, audited), not the import', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    await ecluseOk(['target', 'add', 'glance', dead, '--name', 'dead'], { home: w.inside });
    await w.addImage('second-image', '1.0.0', 64 * 1024);
    await w.exportTo(w.path('media2'));
    const r = await w.importJson(w.path('media2'));
    expect(r.code, r.stderr).toBe(0);
    const list = (await ecluseOk(['target', 'list', '--json'], { home: w.inside })).json as TargetList;
    const deadPushes = list.targets.find((t) => t.name === 'dead')!.pushes;
    expect(deadPushes).toEqual([expect.objectContaining({ status: 'failed', remote_id: null, attempts: 3 })]);
    const lab = list.targets.find((t) => t.name === 'lab')!.pushes;
    expect(lab.filter((p) => p.status === 'active')).toHaveLength(2);
    expect(auditSince(w.inside).filter((a) => a.kind === 'target.push-attempt-failed')).toHaveLength(3);
    const localId = (r.json as { images: { id: string }[] }).images[0]!.id;
    expect((r.json as { targets: unknown[] }).targets).toEqual(
      expect.arrayContaining([
        { target: 'lab', imageId: localId, outcome: 'pushed', remoteId: expect.any(String), error: null },
        {
          target: 'dead',
          imageId: localId,
          outcome: 'failed',
          remoteId: null,
          error: expect.stringContaining('failed after 3 attempts'),
        },
      ]),
    );
    expect(
      auditSince(w.inside)
        .filter((a) => a.kind === 'import.targets')
        .pop(),
    ).toMatchObject({
      outcome: 'fail',
      code: 'E_TARGET',
    });
    // retrying by hand fails the same way, with E_TARGET and exit 3
    const retry = await ecluse(['target', 'push', '--target', 'dead', '--json'], { home: w.inside });
    expect(retry.code).toBe(3);
    expect(retry.json).toMatchObject({ ok: false, code: 'E_TARGET' });
    await ecluseOk(['target', 'remove', 'dead'], { home: w.inside });
  });
});
