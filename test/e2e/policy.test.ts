/**
 * The admission policy and the version order, through the CLI: each refusal names the rule or the installed version,
 * exits 1, and leaves store and state unchanged; applying a policy is audited and its digest is recorded with every
 * decision.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditSince,
  ecluse,
  ecluseOk,
  expectImportRefused,
  makeKeys,
  tmpDir,
  world,
  type Keys,
  type World,
  mediaDir,
} from '../helpers/world.js';
import { receiptOn } from '../helpers/receipt.js';

let keys: Keys;
const roots: string[] = [];

beforeAll(async () => {
  const dir = tmpDir('ecluse-policy-');
  roots.push(dir);
  keys = await makeKeys(`${dir}/keys`);
});

afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

async function fresh(): Promise<World> {
  const w = await world({ keys });
  roots.push(w.root);
  return w;
}

async function applyPolicy(w: World, yaml: string): Promise<string> {
  const file = w.path('policy.yaml');
  fs.writeFileSync(file, yaml);
  const r = await ecluseOk(['policy', 'apply', file, '--json'], { home: w.inside });
  return (r.json as { current: string }).current;
}

const DEBIAN_ONLY = `version: 1
rules:
  - name: debian
    artifacts: ["debian-*"]
    diskFormats: [raw]
    maxSize: 64K
    signers: [bob]
    visibility: private
`;

describe('policy', () => {
  it('check refuses a malformed policy with the field named', async () => {
    const w = await fresh();
    fs.writeFileSync(w.path('bad.yaml'), 'version: 1\nrules:\n  - name: x\n    artifacts: []\n');
    const r = await ecluse(['policy', 'check', w.path('bad.yaml'), '--json'], { home: w.inside });
    expect(r.code).toBe(3);
    expect(r.json).toMatchObject({ ok: false, code: 'E_INPUT' });
    expect((r.json as { message: string }).message).toContain('rules.0.artifacts');
  });

  it('applying a policy is audited with the previous and new digests', async () => {
    const w = await fresh();
    const before = (await ecluseOk(['policy', 'show', '--json'], { home: w.inside })).json as {
      digest: string;
      source: string;
    };
    expect(before.source).toBe('default');
    const digest = await applyPolicy(w, DEBIAN_ONLY);
    const applied = auditSince(w.inside).filter((a) => a.kind === 'policy.applied');
    expect(applied).toHaveLength(1);
    expect(JSON.parse(applied[0]?.details ?? '{}')).toMatchObject({ previous: before.digest, current: digest });
  });

  it('an artifact no rule admits: E_NOT_ALLOWED', async () => {
    const w = await fresh();
    await applyPolicy(w, DEBIAN_ONLY);
    await w.addImage('windows-2025', '1', 4096);
    await w.exportTo(w.path('m'), [], { signers: [keys.signer('bob')] });
    const r = await expectImportRefused(w, w.path('m'), 'E_NOT_ALLOWED');
    expect((r.json as { message: string }).message).toContain('no policy rule admits it');
  });

  it('a disk format the rule does not admit: E_NOT_ALLOWED naming the rule', async () => {
    const w = await fresh();
    await applyPolicy(w, DEBIAN_ONLY);
    const file = w.path('d.img');
    fs.writeFileSync(file, Buffer.alloc(4096, 1));
    await ecluseOk(['relay', 'add', file, '--name', 'debian-13', '--version', '1', '--disk-format', 'qcow2'], {
      home: w.outside,
    });
    await w.exportTo(w.path('m'), [], { signers: [keys.signer('bob')] });
    const r = await expectImportRefused(w, w.path('m'), 'E_NOT_ALLOWED');
    expect((r.json as { message: string }).message).toMatch(/disk format qcow2 .*policy rule debian/);
  });

  it('an artifact over the maximum size: E_NOT_ALLOWED', async () => {
    const w = await fresh();
    await applyPolicy(w, DEBIAN_ONLY);
    await w.addImage('debian-13', '1', 65 * 1024);
    await w.exportTo(w.path('m'), [], { signers: [keys.signer('bob')] });
    const r = await expectImportRefused(w, w.path('m'), 'E_NOT_ALLOWED');
    expect((r.json as { message: string }).message).toContain('over the 65536 allowed');
  });

  it('signed by a trusted signer the rule does not allow for that artifact: E_NOT_ALLOWED', async () => {
    const w = await fresh();
    await applyPolicy(w, DEBIAN_ONLY);
    await w.addImage('debian-13', '1', 4096);
    await w.exportTo(w.path('m'));
    const r = await expectImportRefused(w, w.path('m'), 'E_NOT_ALLOWED');
    expect((r.json as { message: string }).message).toContain('must be among bob');
  });

  it('every refused artifact is named, with its rule, in the refusal and the receipt; the line ends with the replace command', async () => {
    const w = await fresh();
    await applyPolicy(w, DEBIAN_ONLY);
    await w.addImage('windows-2025', '1', 4096);
    await w.addImage('debian-13', '2', 65 * 1024);
    await w.addImage('debian-12', '1', 4096);
    await w.exportTo(w.path('m'), [], { signers: [keys.signer('bob')] });
    const r = await expectImportRefused(w, w.path('m'), 'E_NOT_ALLOWED');
    const message = (r.json as { message: string }).message;
    expect(message).toContain('(2 artifacts refused)');
    expect(message).toMatch(
      new RegExp(`; export a replacement outside: ecluse export --replace 1 --site ${w.site} --to MEDIA$`),
    );
    await ecluseOk(['receipt', 'export', '--to', w.path('r'), '--json'], { home: w.inside });
    const receipt = receiptOn(w.path('r'));
    expect(receipt.refused).toHaveLength(1);
    expect(receipt.refused?.[0]).toMatchObject({ code: 'E_NOT_ALLOWED', sequence: 1 });
    expect(receipt.refused?.[0]?.artifacts).toEqual(
      expect.arrayContaining([
        { name: 'windows-2025', version: '1', sha256: expect.stringMatching(/^[0-9a-f]{64}$/), rule: null },
        { name: 'debian-13', version: '2', sha256: expect.stringMatching(/^[0-9a-f]{64}$/), rule: 'debian' },
      ]),
    );
    expect(receipt.refused?.[0]?.artifacts).toHaveLength(2);
  });

  it('an admitted artifact lands with the rule visibility, and the decision records the policy digest', async () => {
    const w = await fresh();
    const digest = await applyPolicy(w, DEBIAN_ONLY);
    await w.addImage('debian-13', '1', 4096);
    await w.exportTo(w.path('m'), [], { signers: [keys.signer('bob')] });
    const r = await w.importJson(w.path('m'));
    expect(r.json).toMatchObject({ ok: true });
    const accepted = auditSince(w.inside).find((a) => a.kind === 'import.accepted');
    expect(JSON.parse(accepted?.details ?? '{}')).toMatchObject({ policyDigest: digest });
    const Database = (await import('better-sqlite3')).default;
    const db = new Database(`${w.inside}/ecluse.sqlite`, { readonly: true });
    expect(db.prepare('SELECT visibility FROM images').get()).toEqual({ visibility: 'private' });
    db.close();
  });
});

describe('version order (E_ROLLBACK)', () => {
  async function importVersion(w: World, version: string, media: string) {
    await w.addImage('debian-13', version, 2048);
    await w.exportTo(w.path(media));
  }

  it('an older version than the installed one is refused', async () => {
    const w = await fresh();
    await importVersion(w, '20261101', 'm1');
    expect((await w.importJson(w.path('m1'))).json).toMatchObject({ ok: true });
    await importVersion(w, '20261015', 'm2');
    const r = await expectImportRefused(w, w.path('m2'), 'E_ROLLBACK');
    expect((r.json as { message: string }).message).toContain('older than 20261101');
  });

  it('the same version again, from another export station, is refused', async () => {
    const w = await fresh();
    await importVersion(w, '1.2.0', 'm1');
    expect((await w.importJson(w.path('m1'))).json).toMatchObject({ ok: true });
    const otherStation = w.path('outside-2');
    const file = w.path('other.raw');
    fs.writeFileSync(file, Buffer.alloc(2048, 7));
    await ecluseOk(['relay', 'add', file, '--name', 'debian-13', '--version', '1.2.0'], { home: otherStation });
    await ecluseOk(['export', '--to', mediaDir(w.path('m2')), '--site', w.site, '--signer', keys.signer('alice')], {
      home: otherStation,
    });
    const r = await expectImportRefused(w, w.path('m2'), 'E_ROLLBACK');
    expect((r.json as { message: string }).message).toContain('debian-13 1.2.0 is already installed');
  });

  it('a newer version is accepted and hides the older one', async () => {
    const w = await fresh();
    await importVersion(w, '1.9', 'm1');
    expect((await w.importJson(w.path('m1'))).json).toMatchObject({ ok: true });
    await importVersion(w, '1.10', 'm2');
    expect((await w.importJson(w.path('m2'))).json).toMatchObject({ ok: true });
  });

  it('a downgrade is accepted when the policy rule allows it', async () => {
    const w = await fresh();
    await applyPolicy(w, 'version: 1\nrules:\n  - name: any\n    artifacts: ["*"]\n    allowDowngrade: true\n');
    await importVersion(w, '2.0', 'm1');
    expect((await w.importJson(w.path('m1'))).json).toMatchObject({ ok: true });
    await importVersion(w, '1.0', 'm2');
    expect((await w.importJson(w.path('m2'))).json).toMatchObject({ ok: true });
  });
});

describe('a gap left by a refused bundle', () => {
  it('order: strict — E_SEQUENCE_GAP says the missing bundle was refused here, when, why, and how to resend it', async () => {
    const w = await fresh();
    await applyPolicy(w, `order: strict\n${DEBIAN_ONLY}`);
    await w.addImage('windows-2025', '1', 2048);
    await w.exportTo(w.path('m1'), [], { signers: [keys.signer('bob')] });
    await expectImportRefused(w, w.path('m1'), 'E_NOT_ALLOWED');
    await w.addImage('debian-13', '1', 2048);
    await w.exportTo(w.path('m2'), [], { signers: [keys.signer('bob')] });
    const r = await expectImportRefused(w, w.path('m2'), 'E_SEQUENCE_GAP');
    expect((r.json as { message: string }).message).toMatch(
      new RegExp(
        `^bundle 1 from station \\S+ has not been imported; this is 2 and the site policy asks for strict order \\(bundle 1 was refused here at \\S+: E_NOT_ALLOWED\\); import bundle 1 first, or export it again outside: ecluse export --resend 1 --site ${w.site} --to MEDIA$`,
      ),
    );
  });

  it('order: tolerant (the default) — the next bundle is accepted and the gap is named with its refusal', async () => {
    const w = await fresh();
    await applyPolicy(w, DEBIAN_ONLY);
    await w.addImage('windows-2025', '1', 2048);
    await w.exportTo(w.path('m1'), [], { signers: [keys.signer('bob')] });
    await expectImportRefused(w, w.path('m1'), 'E_NOT_ALLOWED');
    await w.addImage('debian-13', '1', 2048);
    await w.exportTo(w.path('m2'), [], { signers: [keys.signer('bob')] });
    const r = await w.importJson(w.path('m2'));
    expect(r.json).toMatchObject({ ok: true, bundle: { sequence: 2 }, chain: { position: 'ahead', missing: [1] } });
    const status = await ecluseOk(['status', '--json'], { home: w.inside });
    expect((status.json as { gaps: unknown }).gaps).toEqual([
      { station: expect.any(String), sequence: 1, refusedWith: 'E_NOT_ALLOWED' },
    ]);
  });
});
