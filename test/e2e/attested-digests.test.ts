/**
 * Attested digests (docs/FORMAT.md 4.8), end to end through the CLI: the export station computes md5 beside sha256
 * and sha512 and signs it into the statement; the import station verifies SHA-256 over every byte and takes md5 and
 * sha512 as signed attestations, unless its policy says `verifyAllDigests: true` (then a wrong one is E_DIGEST naming
 * it). A bundle from before 4.8 (no md5) still imports, its md5 computed inside. Wrong attestations are made by
 * editing the statement and re-signing it with the site's real keys, so only the digest check can tell; the fixture
 * site and its worlds are the hostile-bundle tests' (test/helpers/hostile-world.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { editAndResign, statementOf } from '../helpers/hostile.js';
import { hostileWorlds, KiB } from '../helpers/hostile-world.js';
import { bundleOn, ecluseOk, expectImportRefused, md5, sha256, sha512, type World } from '../helpers/world.js';

interface ArtifactJson {
  sha256: string;
  sha512: string;
  md5?: string;
}
interface ImportJson {
  ok: boolean;
  images: Array<{ checksum: string; os_hash_value: string; sha256: string }>;
}

const VERIFY_ALL = `version: 1
verifyAllDigests: true
rules:
  - name: all
    artifacts: ["*"]
`;

const h = hostileWorlds();

const artifactsOf = (s: Record<string, unknown>) => (s.predicate as { artifacts: ArtifactJson[] }).artifacts;

async function verifyAllDigests(w: World): Promise<void> {
  const file = w.path('policy.yaml');
  fs.writeFileSync(file, VERIFY_ALL);
  await ecluseOk(['policy', 'apply', file, '--json'], { home: w.inside });
}

/** Another valid digest of the same length (the last hex digit changed). */
const other = (hex: string) => hex.slice(0, -1) + (hex.endsWith('0') ? '1' : '0');

describe('attested digests (format 4.8)', () => {
  it('the statement carries the md5 computed at relay add; the import records it and the signed sha512', async () => {
    const { w, img, media, bundle } = await h.exported();
    const [a] = artifactsOf(statementOf(bundle));
    expect(a).toMatchObject({ sha256: sha256(img.bytes), sha512: sha512(img.bytes), md5: md5(img.bytes) });
    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    expect((r.json as ImportJson).images[0]).toMatchObject({
      checksum: md5(img.bytes),
      os_hash_value: sha512(img.bytes),
      sha256: sha256(img.bytes),
    });
  });

  it('a wrong attested md5 is taken as signed by default, and refused (E_DIGEST naming md5) with verifyAllDigests', async () => {
    const { w, img, media, bundle } = await h.exported();
    const wrong = other(md5(img.bytes));
    await editAndResign(bundle, [h.site().alice], (s) => {
      (artifactsOf(s)[0] as ArtifactJson).md5 = wrong;
    });
    const strict = await w.newInside('inside-strict');
    await verifyAllDigests({ ...w, inside: strict });
    const refused = await expectImportRefused(w, media, 'E_DIGEST', strict);
    // The check, then the operator's next step (export it again).
    expect((refused.json as { message: string }).message).toMatch(
      /^img 1\.0\.0 does not match the md5 in the signed statement; export it again outside: /,
    );

    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    expect((r.json as ImportJson).images[0]).toMatchObject({ checksum: wrong, sha256: sha256(img.bytes) });
  });

  it('a wrong attested sha512 is taken as signed by default, and refused (E_DIGEST naming sha512) with verifyAllDigests', async () => {
    const { w, img, media, bundle } = await h.exported();
    const wrong = other(sha512(img.bytes));
    await editAndResign(bundle, [h.site().alice], (s) => {
      (artifactsOf(s)[0] as ArtifactJson).sha512 = wrong;
      (s.subject as Array<{ digest: { sha512: string } }>)[0]!.digest.sha512 = wrong;
    });
    const strict = await w.newInside('inside-strict');
    await verifyAllDigests({ ...w, inside: strict });
    const refused = await expectImportRefused(w, media, 'E_DIGEST', strict);
    // The check, then the operator's next step (export it again).
    expect((refused.json as { message: string }).message).toMatch(
      /^img 1\.0\.0 does not match the sha512 in the signed statement; export it again outside: /,
    );

    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    expect((r.json as ImportJson).images[0]).toMatchObject({ os_hash_value: wrong, checksum: md5(img.bytes) });
  });

  it('a correct statement imports under verifyAllDigests (every digest recomputed and equal)', async () => {
    const { w, img, media } = await h.exported();
    await verifyAllDigests(w);
    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    expect((r.json as ImportJson).images[0]).toMatchObject({
      checksum: md5(img.bytes),
      os_hash_value: sha512(img.bytes),
    });
  });

  it('an old-style bundle (no md5 in the statement) still imports, its checksum computed inside', async () => {
    const { w, img, media, bundle } = await h.exported();
    await editAndResign(bundle, [h.site().alice], (s) => {
      delete (artifactsOf(s)[0] as ArtifactJson).md5;
    });
    expect(artifactsOf(statementOf(bundle))[0]).not.toHaveProperty('md5');
    const r = await w.importJson(media);
    expect(r.code, r.stderr).toBe(0);
    expect((r.json as ImportJson).images[0]).toMatchObject({
      checksum: md5(img.bytes),
      os_hash_value: sha512(img.bytes),
      sha256: sha256(img.bytes),
    });
  });

  it('a relay catalog from before the md5 column gets it from the blob, and the next export carries it', async () => {
    const w = await h.fresh();
    const img = await w.addImage('img', '1.0.0', 100 * KiB);
    const db = new Database(path.join(w.outside, 'relay.sqlite'));
    db.exec('UPDATE artifacts SET md5 = NULL');
    expect(db.prepare('SELECT md5 FROM artifacts').get()).toEqual({ md5: null });
    db.close();
    const media = w.path('media');
    await w.exportTo(media);
    expect(artifactsOf(statementOf(bundleOn(media)))[0]).toMatchObject({ md5: md5(img.bytes) });
  });
});
