/**
 * The `registry` feed kind (relay/feeds/registry-*.ts): the tags of a repository (an OCI layout folder here, read as
 * skopeo reads it; a docker:// registry lists its tags with `skopeo list-tags`), the version read from each tag, new
 * versions taken in as `relay add-image` does with the cosign signature required against the pinned key.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRelayHome, type ArtifactRow, type RelayHome } from '../../../relay/catalog.js';
import { declareFeed, parseFeed, saveFeed } from '../../../relay/feeds/config.js';
import { fetchFeeds } from '../../../relay/feeds/fetch.js';
import { expectRefusal, rmDir, tmpDir } from '../../sneakernet/fixtures.js';
import { buildImage, writeLayout } from '../../sneakernet/oci/image-fixtures.js';
import { makeVendor, writeSignatureTag } from './cosign-fixtures.js';

let root: string;
let home: RelayHome;
const v1 = buildImage({ platforms: ['linux/amd64', 'linux/arm64'] });
const v2 = buildImage({ platforms: ['linux/amd64', 'linux/arm64'] });
const unsigned = buildImage({ platforms: ['linux/amd64', 'linux/arm64'] });

beforeAll(async () => {
  root = await tmpDir('ecluse-registry-feed-');
  home = openRelayHome(path.join(root, 'home'));
  const vendor = makeVendor();
  const layout = path.join(root, 'layout');
  await writeLayout(layout, v1, 'v1.0');
  await writeLayout(layout, v2, '2.0');
  await writeLayout(layout, v2, 'latest');
  await writeLayout(layout, unsigned, '3.0');
  writeSignatureTag(layout, v1.top.digest, await vendor.sign(v1.top.digest));
  writeSignatureTag(layout, v2.top.digest, await vendor.sign(v2.top.digest));
  fs.writeFileSync(path.join(root, 'acme.pub'), vendor.publicKeyPem);
  const config = parseFeed(
    {
      name: 'acme-app',
      vendor: 'acme',
      product: 'app',
      kind: 'registry',
      url: `oci:${layout}`,
      repository: 'acme/app',
      platforms: [{ os: 'linux', architecture: 'arm64' }],
      publicKeys: ['acme.pub'],
    },
    'feed',
  );
  saveFeed(home.db, declareFeed(config, root), false);
});

afterAll(async () => {
  home.db.close();
  await rmDir(root);
});

describe('a registry feed', () => {
  it('takes every signed tag with a version, skips tags without one and cosign tags, refuses the unsigned one', async () => {
    const r = await fetchFeeds(home);
    expect(r.fetched.map((f) => `${f.name}@${f.version}:${f.evidence}`).sort()).toEqual([
      'app@1.0:cosign',
      'app@2.0:cosign',
    ]);
    expect(r.refused).toEqual([
      expect.objectContaining({ feed: 'acme-app', file: `oci:${root}/layout:3.0`, code: 'E_VENDOR_UNTRUSTED' }),
    ]);
    const rows = home.db
      .prepare("SELECT * FROM artifacts WHERE type = 'oci-image' ORDER BY version")
      .all() as ArtifactRow[];
    expect(rows.map((x) => [x.version, x.feed, (JSON.parse(x.evidence ?? '{}') as { kind?: string }).kind])).toEqual([
      ['1.0', 'acme-app', 'cosign'],
      ['2.0', 'acme-app', 'cosign'],
    ]);
    const image = home.db.prepare('SELECT tag, platforms FROM images ORDER BY artifact_id').all();
    expect(image).toEqual([
      { tag: 'v1.0', platforms: JSON.stringify([{ os: 'linux', architecture: 'arm64' }]) },
      { tag: '2.0', platforms: JSON.stringify([{ os: 'linux', architecture: 'arm64' }]) },
    ]);
  });

  it('a second fetch finds them present', async () => {
    const r = await fetchFeeds(home);
    expect(r.fetched).toEqual([]);
    expect(r.present.map((p) => p.version).sort()).toEqual(['1.0', '2.0']);
  });

  it('E_INPUT: a registry feed that pins no key, or names a tag in its url', async () => {
    const base = { name: 'x', vendor: 'acme', product: 'app', kind: 'registry' };
    await expectRefusal(
      () => parseFeed({ ...base, url: 'docker://reg.example/acme/app' }, 'feed'),
      'E_INPUT',
      'publicKeys',
    );
    await expectRefusal(
      () => parseFeed({ ...base, url: 'docker://reg.example/acme/app:1.0', publicKeys: ['k'] }, 'feed'),
      'E_INPUT',
      'url',
    );
  });
});
