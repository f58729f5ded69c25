/**
 * Vendor feeds at the export station: a local HTTP mirror on loopback, an OpenPGP vendor key made by gpg, a Sigstore
 * vendor key made by Node. A good release is fetched with its evidence; a bad checksum-file signature, an image not
 * matching its checksum and a release signed by an unpinned key are refused with their codes and not kept.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRelayHome, type RelayHome } from '../../relay/catalog.js';
import { applyFeeds, readFeedsFile } from '../../relay/feeds/config.js';
import { fetchFeeds } from '../../relay/feeds/fetch.js';
import { vendorEvidenceSchema } from '../../sneakernet/evidence.js';
import {
  checksumFile,
  makePgpVendor,
  makeSigstoreVendor,
  sha256,
  startMirror,
  type Mirror,
  type PgpVendor,
  type SigstoreVendor,
} from './vendor-fixtures.js';

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-feeds-'));

describe('vendor feeds', () => {
  let vendor: PgpVendor;
  let stranger: PgpVendor;
  let sig: SigstoreVendor;
  let otherSig: SigstoreVendor;
  const mirrors: Mirror[] = [];
  const homes: RelayHome[] = [];
  const dirs: string[] = [];

  beforeAll(() => {
    vendor = makePgpVendor('Debian Cloud <cloud@example.org>');
    stranger = makePgpVendor('Mallory <mallory@example.org>');
    sig = makeSigstoreVendor();
    otherSig = makeSigstoreVendor();
  });
  afterAll(async () => {
    for (const m of mirrors) await m.close();
    for (const h of homes) h.db.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
    vendor.close();
    stranger.close();
  });

  /** A mirror folder with two images, a SHA256SUMS and (unless told) its detached signature by `signer`. */
  async function checksumWorld(o: { signer?: PgpVendor; clear?: boolean; tamper?: boolean } = {}) {
    const root = tmp();
    dirs.push(root);
    const mirrorDir = path.join(root, 'mirror');
    fs.mkdirSync(mirrorDir);
    const images = { 'cloud-13-20261101.qcow2': randomBytes(300_000), 'cloud-13-20261115.qcow2': randomBytes(200_000) };
    for (const [n, b] of Object.entries(images)) fs.writeFileSync(path.join(mirrorDir, n), b);
    fs.writeFileSync(path.join(mirrorDir, 'README'), 'not an image');
    fs.writeFileSync(path.join(mirrorDir, 'SHA256SUMS'), checksumFile(mirrorDir, Object.keys(images)));
    const signer = o.signer ?? vendor;
    if (o.clear) signer.clearSign(path.join(mirrorDir, 'SHA256SUMS'), path.join(mirrorDir, 'CHECKSUM'));
    else signer.detachSign(path.join(mirrorDir, 'SHA256SUMS'));
    if (o.tamper) {
      // The image is replaced after the vendor signed its checksum.
      fs.writeFileSync(path.join(mirrorDir, 'cloud-13-20261115.qcow2'), randomBytes(200_000));
    }
    const mirror = await startMirror(mirrorDir);
    mirrors.push(mirror);
    fs.writeFileSync(path.join(root, 'vendor.asc'), vendor.publicKey);
    fs.writeFileSync(
      path.join(root, 'feeds.yaml'),
      [
        'feeds:',
        '  - name: cloud',
        '    vendor: debian',
        '    product: cloud-13',
        '    kind: checksums',
        `    url: ${mirror.url}`,
        o.clear ? '    checksums: CHECKSUM' : '    checksums: SHA256SUMS',
        ...(o.clear ? [] : ['    signature: SHA256SUMS.gpg']),
        '    openpgpKeys: [vendor.asc]',
        "    match: 'cloud-13-*.qcow2'",
        '    diskFormat: qcow2',
        '',
      ].join('\n'),
    );
    const home = openRelayHome(path.join(root, 'outside'));
    homes.push(home);
    applyFeeds(home.db, readFeedsFile(path.join(root, 'feeds.yaml')));
    return { root, mirror, images, home };
  }

  it('fetches a good release over HTTP, with its evidence, and only once', async () => {
    const w = await checksumWorld();
    const r = await fetchFeeds(w.home);
    expect(r.refused).toEqual([]);
    expect(r.fetched.map((f) => f.version).sort()).toEqual(['20261101', '20261115']);
    for (const f of r.fetched) {
      const bytes = w.images[f.file as keyof typeof w.images];
      expect(f.sha256).toBe(sha256(bytes));
      expect(fs.readFileSync(path.join(w.home.blobs, 'sha256', f.sha256))).toEqual(bytes);
      const row = w.home.db.prepare('SELECT * FROM artifacts WHERE sha256 = ?').get(f.sha256) as {
        vendor: string;
        evidence: string;
        disk_format: string;
      };
      expect(row).toMatchObject({ vendor: 'debian', disk_format: 'qcow2' });
      const e = vendorEvidenceSchema.parse(JSON.parse(row.evidence));
      expect(e).toMatchObject({ kind: 'openpgp-checksums', keyFingerprint: vendor.fingerprint, file: f.file });
      const kept = fs.readdirSync(path.join(w.home.root, 'evidence', f.sha256)).sort();
      expect(kept).toEqual(['SHA256SUMS', 'SHA256SUMS.gpg', 'evidence.json']);
    }
    const again = await fetchFeeds(w.home);
    expect(again.fetched).toEqual([]);
    expect(again.refused).toEqual([]);
    expect(again.present).toHaveLength(2);
  });

  it('accepts a clear-signed checksum file', async () => {
    const w = await checksumWorld({ clear: true });
    const r = await fetchFeeds(w.home);
    expect(r.refused).toEqual([]);
    expect(r.fetched).toHaveLength(2);
  });

  it('resumes an interrupted download with an HTTP Range request', async () => {
    const w = await checksumWorld();
    w.mirror.cutNext('cloud-13-20261101.qcow2', 100_000);
    const first = await fetchFeeds(w.home);
    expect(first.refused.map((x) => x.code)).toEqual(['E_FEED']);
    expect(first.fetched.map((f) => f.version)).toEqual(['20261115']);
    const second = await fetchFeeds(w.home);
    expect(second.refused).toEqual([]);
    expect(second.fetched).toHaveLength(1);
    expect(second.fetched[0]?.resumedFrom).toBeGreaterThan(0);
    expect(w.mirror.log.some((l) => l.status === 206 && l.range?.startsWith('bytes='))).toBe(true);
    expect(second.fetched[0]?.sha256).toBe(sha256(w.images['cloud-13-20261101.qcow2']));
  });

  it('stops a download that stalls (no byte for the stall timeout), keeps it, and resumes it on the next fetch', async () => {
    const w = await checksumWorld();
    w.mirror.stallNext('cloud-13-20261115.qcow2', 50_000);
    const started = Date.now();
    const first = await fetchFeeds(w.home, { stallTimeoutMs: 1500 });
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(first.refused).toHaveLength(1);
    expect(first.refused[0]).toMatchObject({ code: 'E_FEED' });
    expect(first.refused[0]?.message).toMatch(/no byte arrived for 1.5 s \(run fetch again to resume\)/);
    expect(first.fetched.map((f) => f.version)).toEqual(['20261101']);
    const second = await fetchFeeds(w.home, { stallTimeoutMs: 1500 });
    expect(second.refused).toEqual([]);
    expect(second.fetched[0]?.resumedFrom).toBe(50_000);
    expect(second.fetched[0]?.sha256).toBe(sha256(w.images['cloud-13-20261115.qcow2']));
  });

  it('refuses a checksum file whose signature is bad: E_VENDOR_SIGNATURE', async () => {
    const w = await checksumWorld();
    const sums = path.join(w.mirror.dir, 'SHA256SUMS');
    fs.appendFileSync(sums, `${'0'.repeat(64)}  cloud-13-20261201.qcow2\n`);
    const r = await fetchFeeds(w.home);
    expect(r.fetched).toEqual([]);
    expect(r.refused.map((x) => x.code)).toEqual(['E_VENDOR_SIGNATURE']);
    expect(w.home.db.prepare('SELECT count(*) AS n FROM artifacts').get()).toEqual({ n: 0 });
  });

  it('refuses an image that does not match its signed checksum: E_VENDOR_DIGEST, and keeps nothing of it', async () => {
    const w = await checksumWorld({ tamper: true });
    const r = await fetchFeeds(w.home);
    expect(r.fetched.map((f) => f.version)).toEqual(['20261101']);
    expect(r.refused).toMatchObject([{ code: 'E_VENDOR_DIGEST', file: 'cloud-13-20261115.qcow2' }]);
    expect(fs.readdirSync(w.home.blobs).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('refuses a release signed by a key that is not pinned: E_VENDOR_UNTRUSTED', async () => {
    const w = await checksumWorld({ signer: stranger });
    const r = await fetchFeeds(w.home);
    expect(r.fetched).toEqual([]);
    expect(r.refused.map((x) => x.code)).toEqual(['E_VENDOR_UNTRUSTED']);
  });

  async function sigstoreWorld(signer: SigstoreVendor, mode: 'blob' | 'attest' = 'blob', tamper = false) {
    const root = tmp();
    dirs.push(root);
    const mirrorDir = path.join(root, 'mirror');
    fs.mkdirSync(mirrorDir);
    const bytes = randomBytes(150_000);
    fs.writeFileSync(path.join(mirrorDir, 'acme-fw-2.4.1.raw'), bytes);
    const bundle = mode === 'blob' ? await signer.signBlob(bytes) : await signer.attestBlob('acme-fw-2.4.1.raw', bytes);
    fs.writeFileSync(path.join(mirrorDir, 'acme-fw-2.4.1.raw.sigstore.json'), bundle);
    if (tamper) fs.writeFileSync(path.join(mirrorDir, 'acme-fw-2.4.1.raw'), randomBytes(150_000));
    const mirror = await startMirror(mirrorDir);
    mirrors.push(mirror);
    fs.writeFileSync(path.join(root, 'acme.pub'), sig.publicKeyPem);
    fs.writeFileSync(
      path.join(root, 'feeds.json'),
      JSON.stringify({
        feeds: [
          {
            name: 'acme',
            vendor: 'acme',
            product: 'acme-fw',
            kind: 'sigstore',
            url: mirror.url,
            publicKeys: ['acme.pub'],
            match: '*.raw',
          },
        ],
      }),
    );
    const home = openRelayHome(path.join(root, 'outside'));
    homes.push(home);
    applyFeeds(home.db, readFeedsFile(path.join(root, 'feeds.json')));
    return { home, bytes };
  }

  it('fetches a Sigstore-signed blob verified against the pinned key (message signature and DSSE)', async () => {
    for (const mode of ['blob', 'attest'] as const) {
      const w = await sigstoreWorld(sig, mode);
      const r = await fetchFeeds(w.home);
      expect(r.refused).toEqual([]);
      expect(r.fetched).toMatchObject([
        { name: 'acme-fw', version: '2.4.1', sha256: sha256(w.bytes), evidence: 'sigstore' },
      ]);
    }
  });

  it('refuses a Sigstore blob signed by an unpinned key (E_VENDOR_UNTRUSTED) or not matching (E_VENDOR_DIGEST)', async () => {
    const a = await sigstoreWorld(otherSig);
    expect((await fetchFeeds(a.home)).refused.map((x) => x.code)).toEqual(['E_VENDOR_UNTRUSTED']);
    const b = await sigstoreWorld(sig, 'blob', true);
    expect((await fetchFeeds(b.home)).refused.map((x) => x.code)).toEqual(['E_VENDOR_DIGEST']);
    const c = await sigstoreWorld(sig, 'attest', true);
    expect((await fetchFeeds(c.home)).refused.map((x) => x.code)).toEqual(['E_VENDOR_DIGEST']);
  });
});
