/**
 * The glance feed kind against a real Glance v2 server (écluse's own, on loopback, populated through its write API),
 * seen through a proxy that can demand a token, cut a download, flip a byte or lie about a record. Images are signed
 * here with vendor keys whose certificates the feed pins by uuid.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRelayHome, type RelayHome } from '../../relay/catalog.js';
import { applyFeeds, listFeeds, readFeedsFile } from '../../relay/feeds/config.js';
import { fetchFeeds } from '../../relay/feeds/fetch.js';
import { vendorEvidenceSchema } from '../../sneakernet/evidence.js';
import { glanceFixture, type GlanceFixture } from '../helpers/glance-fixture.js';
import {
  ecSigner,
  publish,
  rsaSigner,
  startGlanceProxy,
  type CertSigner,
  type GlanceProxy,
} from './glance-fixtures.js';

const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

describe('glance feeds', () => {
  let staging: GlanceFixture;
  let proxy: GlanceProxy;
  let vendor: CertSigner;
  let vendorEc: CertSigner;
  let stranger: CertSigner;
  const homes: RelayHome[] = [];
  const dirs: string[] = [];
  /** Distinct image names per test (the staging Glance is shared). */
  let n = 0;

  beforeAll(async () => {
    staging = await glanceFixture([]);
    proxy = await startGlanceProxy(staging.url);
    vendor = rsaSigner('Vendor image signing');
    vendorEc = ecSigner('Vendor EC image signing');
    stranger = rsaSigner('Mallory');
  });
  afterAll(async () => {
    await proxy.close();
    await staging.close();
    for (const h of homes) h.db.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  /** A relay home with one glance feed (YAML written beside the pinned certificate files). */
  function outside(feed: Record<string, unknown>, certs: CertSigner[] = [vendor, vendorEc]) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-glance-feed-'));
    dirs.push(root);
    const certificates: Record<string, string> = {};
    for (const c of certs) {
      fs.writeFileSync(path.join(root, `${c.uuid}.pem`), c.certPem);
      certificates[c.uuid] = `${c.uuid}.pem`;
    }
    const config = {
      name: 'staging',
      vendor: 'vendorix',
      product: 'vendor-os',
      kind: 'glance',
      endpoint: proxy.url,
      ...(certs.length ? { certificates } : {}),
      ...feed,
    };
    fs.writeFileSync(path.join(root, 'feeds.json'), JSON.stringify({ feeds: [config] }));
    const home = openRelayHome(path.join(root, 'outside'));
    homes.push(home);
    applyFeeds(home.db, readFeedsFile(path.join(root, 'feeds.json')));
    return { root, home };
  }

  /** Publishes a signed image (unless told) named `<prefix>-<version>`, with a version property. */
  async function image(
    prefix: string,
    version: string,
    o: { signer?: CertSigner | null; tags?: string[]; properties?: Record<string, string>; data?: Buffer } = {},
  ) {
    const data = o.data ?? crypto.randomBytes(40_000 + Math.floor(Math.random() * 20_000));
    const signer = o.signer === undefined ? vendor : o.signer;
    const id = await publish(staging.url, {
      name: `${prefix}-${version}`,
      data,
      tags: o.tags ?? ['release'],
      properties: {
        version,
        os_distro: 'vendorix',
        hw_firmware_type: 'uefi',
        ...(signer ? signer.sign(data) : {}),
        ...o.properties,
      },
    });
    return { id, data };
  }

  const leftovers = (home: RelayHome) => fs.readdirSync(home.blobs).filter((f) => f.startsWith('.'));
  const artifacts = (home: RelayHome) =>
    (home.db.prepare('SELECT count(*) AS n FROM artifacts').get() as { n: number }).n;

  it('selects by name, tag and property exactly, verifies signatures, keeps evidence, and fetches once', async () => {
    const p = `sel${++n}`;
    const a = await image(p, '1.0');
    const b = await image(p, '1.1', { signer: vendorEc });
    await image(p, '1.2', { tags: ['beta'] }); // not tagged release
    await image(p, '1.3', { properties: { os_distro: 'other' } }); // another property value
    await image(`other${p}`, '1.4'); // another name
    await publish(staging.url, { name: `${p}-1.5`, data: null, tags: ['release'], properties: { version: '1.5' } }); // queued
    const deactivated = await image(p, '1.6');
    const d = await fetch(`${staging.url}/v2/images/${deactivated.id}/actions/deactivate`, { method: 'POST' });
    expect(d.status).toBe(204);
    const { home } = outside({
      matchName: `${p}-*`,
      matchTags: ['release'],
      matchProperties: { os_distro: 'vendorix' },
      versionProperty: 'version',
    });
    proxy.log.length = 0;
    const r = await fetchFeeds(home);
    expect(r.refused).toEqual([]);
    expect(r.fetched.map((f) => f.version)).toEqual(['1.0', '1.1']);
    // Glance was asked to filter where it can; the selection was decided again on the records.
    const list = proxy.log.find((l) => l.path === '/v2/images');
    expect(list?.query).toContain('status=active');
    expect(list?.query).toContain('tag=release');
    expect(list?.query).toContain('os_distro=vendorix');
    for (const [f, img] of [
      [r.fetched[0], a],
      [r.fetched[1], b],
    ] as const) {
      expect(f?.sha256).toBe(sha256(img.data));
      expect(fs.readFileSync(path.join(home.blobs, 'sha256', f?.sha256 ?? ''))).toEqual(img.data);
      const row = home.db.prepare('SELECT * FROM artifacts WHERE sha256 = ?').get(f?.sha256) as {
        vendor: string;
        evidence: string;
        properties: string;
        source: string;
        disk_format: string;
      };
      expect(row).toMatchObject({ vendor: 'vendorix', disk_format: 'raw', source: `${proxy.url}/v2/images/${img.id}` });
      expect(JSON.parse(row.properties)).toEqual({ os_distro: 'vendorix', hw_firmware_type: 'uefi' });
      const e = vendorEvidenceSchema.parse(JSON.parse(row.evidence));
      expect(e).toMatchObject({ kind: 'glance-image', imageId: img.id, osHashAlgo: 'sha512' });
      expect(e.kind === 'glance-image' && e.signature?.keyType).toBe(f === r.fetched[0] ? 'RSA-PSS' : 'ECC_SECP384R1');
      expect(fs.readdirSync(path.join(home.root, 'evidence', f?.sha256 ?? '')).sort()).toEqual([
        'evidence.json',
        'glance-image.json',
      ]);
    }
    const again = await fetchFeeds(home);
    expect(again).toMatchObject({ fetched: [], refused: [] });
    expect(again.present.map((x) => x.version)).toEqual(['1.0', '1.1']);
    expect(proxy.log.filter((l) => l.path.endsWith('/file'))).toHaveLength(2); // the second fetch downloaded nothing
  });

  it('follows the list page after page (the release is on the second page)', async () => {
    const p = `page${++n}`;
    // Inserted first: the oldest, so last in Glance's default order (created_at desc), past the first 200.
    const first = staging.add({ name: `${p}-9.0`, properties: { version: '9.0' }, tags: ['bulk'], origin: 'api' });
    for (let i = 0; i < 230; i++) staging.add({ name: `${p}-x${i}`, tags: ['bulk'], origin: 'api' });
    const { home } = outside(
      { matchName: `${p}-*`, matchTags: ['bulk'], versionProperty: 'version', requireSignature: false },
      [],
    );
    proxy.log.length = 0;
    const r = await fetchFeeds(home);
    expect(r.refused).toEqual([]);
    expect(r.fetched.map((f) => f.version)).toEqual(['9.0']);
    expect(r.fetched[0]?.sha256).toBe(first.sha256);
    expect(proxy.log.filter((l) => l.path === '/v2/images').length).toBe(2);
    expect(proxy.log.filter((l) => l.path === '/v2/images')[1]?.query).toMatch(/marker=[0-9a-f-]{36}/);
    // Unsigned, taken only because the feed said so: provenance-only evidence.
    const row = home.db.prepare('SELECT evidence FROM artifacts').get() as { evidence: string };
    expect(JSON.parse(row.evidence)).toMatchObject({ kind: 'glance-image', signature: null });
  });

  it('resumes an interrupted download with a Range request', async () => {
    const p = `resume${++n}`;
    const a = await image(p, '2.0', { data: crypto.randomBytes(300_000) });
    const { home } = outside({ matchName: `${p}-2.0`, versionProperty: 'version' });
    proxy.behaviour.cutNextFile = 100_000;
    const first = await fetchFeeds(home);
    expect(first.refused.map((x) => x.code)).toEqual(['E_FEED']);
    expect(leftovers(home)).toHaveLength(1);
    // What the cut left on disk: all the proxy sent before it closed the connection (up to 100,000 bytes; a loaded
    // machine may deliver less of it). The second run must resume from exactly there.
    const kept = fs.statSync(path.join(home.blobs, leftovers(home)[0] as string)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(100_000);
    proxy.log.length = 0;
    const second = await fetchFeeds(home);
    expect(second.refused).toEqual([]);
    expect(second.fetched[0]?.resumedFrom).toBe(kept);
    expect(second.fetched[0]?.sha256).toBe(sha256(a.data));
    expect(proxy.log.find((l) => l.path.endsWith('/file'))).toMatchObject({
      status: 206,
      range: expect.stringMatching(/^bytes=\d+-$/),
    });
    expect(leftovers(home)).toEqual([]);
  });

  it('refuses an image whose size or bytes are not what Glance published: E_VENDOR_DIGEST, keeping nothing', async () => {
    const p = `digest${++n}`;
    await image(p, '3.0');
    const { home } = outside({ matchName: `${p}-3.0`, versionProperty: 'version' });
    try {
      proxy.behaviour.editImage = (i) => {
        if (typeof i.size === 'number') i.size += 1;
      };
      const size = await fetchFeeds(home);
      expect(size.refused).toMatchObject([{ code: 'E_VENDOR_DIGEST' }]);
      expect(size.refused[0]?.message).toMatch(/bytes/);
      proxy.behaviour.editImage = undefined;
      proxy.behaviour.flipFileByte = true;
      const bytes = await fetchFeeds(home);
      expect(bytes.refused).toMatchObject([{ code: 'E_VENDOR_DIGEST' }]);
      expect(bytes.refused[0]?.message).toMatch(/sha512/);
      proxy.behaviour.flipFileByte = false;
      proxy.behaviour.editImage = (i) => {
        if (typeof i.checksum === 'string') i.checksum = '0'.repeat(32);
      };
      const md5 = await fetchFeeds(home);
      expect(md5.refused).toMatchObject([{ code: 'E_VENDOR_DIGEST' }]);
    } finally {
      proxy.behaviour.editImage = undefined;
      proxy.behaviour.flipFileByte = false;
    }
    expect(leftovers(home)).toEqual([]);
    expect(artifacts(home)).toBe(0);
  });

  it('refuses a bad signature (E_VENDOR_SIGNATURE), an unpinned certificate (E_VENDOR_UNTRUSTED), an unsigned image', async () => {
    const p = `sig${++n}`;
    const data = crypto.randomBytes(60_000);
    // Signed by the vendor, but over other bytes.
    await image(p, '4.0', { data, properties: vendor.sign(crypto.randomBytes(60_000)) });
    // Signed by a stranger claiming the vendor's certificate uuid.
    const forged = crypto.randomBytes(60_000);
    await image(p, '4.1', {
      data: forged,
      properties: { ...stranger.sign(forged), img_signature_certificate_uuid: vendor.uuid },
    });
    await image(p, '4.2', { signer: stranger }); // a certificate the feed does not pin
    await image(p, '4.3', { signer: null }); // unsigned
    const partial = await image(p, '4.4', { signer: null, properties: { img_signature: 'AAAA' } });
    expect(partial.id).toBeTruthy();
    const { home } = outside({ matchName: `${p}-*`, versionProperty: 'version' });
    proxy.log.length = 0;
    const r = await fetchFeeds(home);
    expect(r.fetched).toEqual([]);
    expect(r.refused.map((x) => [x.file?.split(' ')[0], x.code])).toEqual([
      [`${p}-4.0`, 'E_VENDOR_SIGNATURE'],
      [`${p}-4.1`, 'E_VENDOR_SIGNATURE'],
      [`${p}-4.2`, 'E_VENDOR_UNTRUSTED'],
      [`${p}-4.3`, 'E_VENDOR_SIGNATURE'],
      [`${p}-4.4`, 'E_VENDOR_SIGNATURE'],
    ]);
    expect(leftovers(home)).toEqual([]);
    expect(artifacts(home)).toBe(0);
    // Only the two naming a pinned certificate were downloaded at all.
    expect(proxy.log.filter((l) => l.path.endsWith('/file'))).toHaveLength(2);
  });

  it('sends the token from the file or variable the feed names, and says when it is refused', async () => {
    const p = `token${++n}`;
    await image(p, '5.0');
    const token = `tok-${crypto.randomBytes(8).toString('hex')}`;
    proxy.behaviour.token = token;
    try {
      const a = outside({ matchName: `${p}-5.0`, versionProperty: 'version', tokenFile: 'staging.token' });
      fs.writeFileSync(path.join(a.root, 'staging.token'), `${token}\n`);
      const stored = listFeeds(a.home.db)[0]?.config;
      expect(stored?.kind === 'glance' && stored.tokenFile).toBe(path.join(a.root, 'staging.token'));
      expect((await fetchFeeds(a.home)).fetched).toHaveLength(1);
      process.env.ECLUSE_TEST_GLANCE_TOKEN = 'wrong';
      const b = outside({ matchName: `${p}-5.0`, versionProperty: 'version', tokenEnv: 'ECLUSE_TEST_GLANCE_TOKEN' });
      const refused = await fetchFeeds(b.home);
      expect(refused.refused).toMatchObject([{ code: 'E_FEED', file: null }]);
      expect(refused.refused[0]?.message).toMatch(/401/);
      expect(refused.refused[0]?.message).not.toContain('wrong');
      process.env.ECLUSE_TEST_GLANCE_TOKEN = token;
      expect((await fetchFeeds(b.home)).fetched).toHaveLength(1);
    } finally {
      proxy.behaviour.token = undefined;
      delete process.env.ECLUSE_TEST_GLANCE_TOKEN;
    }
  });

  it('refuses feed declarations without trust, with an inline token, or with an expired certificate', () => {
    expect(() => outside({ matchName: 'x' }, [])).toThrow(/pins the vendor certificates|requireSignature: false/);
    expect(() => outside({ matchName: 'x', token: 'secret' })).toThrow(/never holds a token/);
    expect(() => outside({ matchName: 'x', tokenFile: 'a', tokenEnv: 'B' })).toThrow(/not both/);
    const old = rsaSigner('expired', new Date(Date.now() - 20 * 365 * 86_400_000));
    expect(() => outside({ matchName: 'x' }, [old])).toThrow(/expired/);
  });

  it('takes a Keystone application credential instead of a token, never the secret itself', () => {
    const keystone = { authUrl: 'https://keystone.example/v3', applicationCredentialId: 'abc123' };
    const ok = outside({ endpoint: undefined, keystone: { ...keystone, applicationCredentialSecretFile: 'k.secret' } });
    const stored = ok.home.db.prepare('SELECT config FROM feeds').get() as { config: string };
    // The secret file is made absolute when declared (fetch may run elsewhere); the endpoint comes from the catalog.
    expect(JSON.parse(stored.config)).toMatchObject({
      keystone: { ...keystone, applicationCredentialSecretFile: path.join(ok.root, 'k.secret'), interface: 'public' },
    });
    expect(() => outside({ keystone: { ...keystone, applicationCredentialSecret: 's3cret' } })).toThrow(
      /never holds a secret/,
    );
    expect(() => outside({ keystone })).toThrow(/applicationCredentialSecretFile or applicationCredentialSecretEnv/);
    expect(() => outside({ keystone: { ...keystone, applicationCredentialSecretEnv: 'S' }, tokenEnv: 'T' })).toThrow(
      /keystone or a token/,
    );
    expect(() => outside({ endpoint: undefined })).toThrow(/or keystone to take it from the catalog/);
  });

  it('refuses two different images claiming the same version (E_FEED), fetching neither', async () => {
    const p = `dup${++n}`;
    await image(p, '6.0');
    await publish(staging.url, {
      name: `${p}-6.0-rebuild\nE_FORGED: a line of its own`,
      data: crypto.randomBytes(1000),
      tags: ['release'],
      properties: { version: '6.0' },
    });
    const { home } = outside({ matchName: `${p}-6.0*`, versionProperty: 'version' });
    const r = await fetchFeeds(home);
    expect(r.refused).toMatchObject([{ code: 'E_FEED' }]);
    expect(r.refused[0]?.message).toMatch(/narrow the selection/);
    expect(r.refused[0]?.message).not.toContain('\n'); // a remote name cannot forge a log line
    expect(r.fetched).toEqual([]);
  });
});
