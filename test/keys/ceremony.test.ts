import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addSigner, initKeys, type InitKeysResult } from '../../keys/ceremony.js';
import { keyIdOf } from '../../keys/keyid.js';
import { loadSigner } from '../../keys/signer.js';
import { installTrust, loadTrustAnchors } from '../../keys/trust.js';
import { resolvePassphrase } from '../../keys/passphrase.js';
import { PASS, modeOf, refusal, tmpDir } from './fixtures.js';

describe('key ceremony', () => {
  let base: string;
  let keyDir: string;
  let init: InitKeysResult;
  let plainDir: string;

  beforeAll(async () => {
    base = tmpDir('ceremony');
    keyDir = path.join(base, 'kd');
    plainDir = path.join(base, 'plain');
    [init] = await Promise.all([
      initKeys({ out: keyDir, signers: ['alice', 'bob'], passphrase: PASS }),
      initKeys({ out: plainDir, signers: ['solo'], passphrase: null, siteName: 'Lyon' }),
    ]);
  });
  afterAll(() => fs.rmSync(base, { recursive: true, force: true }));

  it('writes the KEYDIR layout with private parts closed and public parts readable', () => {
    expect(init.trustDir).toBe(path.join(keyDir, 'trust'));
    expect(init.rootDir).toBe(path.join(keyDir, 'root'));
    expect(modeOf(keyDir)).toBe(0o700);
    expect(modeOf(path.join(keyDir, 'trust'))).toBe(0o755);
    expect(modeOf(path.join(keyDir, 'trust/root.pem'))).toBe(0o644);
    expect(modeOf(path.join(keyDir, 'trust/trust.json'))).toBe(0o644);
    expect(modeOf(path.join(keyDir, 'root'))).toBe(0o700);
    expect(modeOf(path.join(keyDir, 'root/key.pem'))).toBe(0o600);
    expect(modeOf(path.join(keyDir, 'signers'))).toBe(0o700);
    for (const name of ['alice', 'bob']) {
      const dir = path.join(keyDir, 'signers', name);
      expect(modeOf(dir)).toBe(0o700);
      expect(modeOf(path.join(dir, 'key.pem'))).toBe(0o600);
      expect(fs.readFileSync(path.join(dir, 'key.pem'), 'utf8')).toContain('BEGIN ENCRYPTED PRIVATE KEY');
      const record = JSON.parse(fs.readFileSync(path.join(dir, 'signer.json'), 'utf8')) as Record<string, string>;
      const s = init.signers.find((x) => x.name === name);
      expect(record).toEqual({ name, keyId: s?.keyId, notBefore: expect.any(String), notAfter: s?.notAfter });
    }
    expect(fs.readFileSync(path.join(keyDir, 'root/cert.pem'))).toEqual(
      fs.readFileSync(path.join(keyDir, 'trust/root.pem')),
    );
    expect(fs.readFileSync(path.join(plainDir, 'root/key.pem'), 'utf8')).toContain('BEGIN PRIVATE KEY');
  });

  it('issues a self-signed RSA-3072 root CA and signer certificates under it', () => {
    const anchors = loadTrustAnchors(init.trustDir);
    expect(anchors.rootKeyId).toBe(init.rootKeyId);
    expect(anchors.rootVersion).toBe(1);
    expect(anchors.root.subject).toContain('CN=écluse site root');
    expect(anchors.root.publicKey.asymmetricKeyDetails?.modulusLength).toBe(3072);
    const validYears = (Date.parse(anchors.root.validTo) - Date.parse(anchors.root.validFrom)) / 31_536_000_000;
    expect(validYears).toBeGreaterThan(9.9);
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(keyDir, 'signers/alice/cert.pem')));
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe('CN=alice\nOU=signer\nO=ecluse');
    expect(cert.checkIssued(anchors.root) && cert.verify(anchors.root.publicKey)).toBe(true);
    expect(keyIdOf(cert.publicKey)).toBe(init.signers[0]?.keyId);
    expect(loadTrustAnchors(path.join(plainDir, 'trust')).root.subject).toContain('CN=Lyon root');
  });

  it('refuses to overwrite an existing KEYDIR and refuses bad signer names', async () => {
    await refusal(() => initKeys({ out: keyDir, signers: ['carol'], passphrase: null }), 'E_ALREADY_INITIALIZED');
    const fresh = path.join(base, 'fresh');
    for (const bad of ['Alice', '-x', 'a/b', '', 'x'.repeat(64), 'é']) {
      await refusal(() => initKeys({ out: fresh, signers: [bad], passphrase: null }), 'E_USAGE');
    }
    await refusal(() => initKeys({ out: fresh, signers: ['a', 'a'], passphrase: null }), 'E_USAGE');
    expect(fs.existsSync(fresh)).toBe(false);
  });

  it('unlocks an encrypted key only with the right passphrase, and asks only when needed', async () => {
    const err = await refusal(
      () => loadSigner(path.join(keyDir, 'signers/alice'), () => Promise.resolve('wrong')),
      'E_PASSPHRASE',
    );
    expect(err.message).toMatch(/wrong passphrase/);
    await refusal(() => loadSigner(path.join(keyDir, 'signers/alice'), () => Promise.resolve(null)), 'E_PASSPHRASE');
    const alice = await loadSigner(path.join(keyDir, 'signers/alice'), () => Promise.resolve(PASS));
    expect(alice.keyId).toBe(init.signers[0]?.keyId);
    let asked = false;
    const solo = await loadSigner(path.join(plainDir, 'signers/solo'), () => {
      asked = true;
      return Promise.resolve(null);
    });
    expect(asked).toBe(false);
    expect(solo.name).toBe('solo');
  });

  it('adds a signer with the root key, and refuses a duplicate or a wrong root passphrase', async () => {
    const carol = await addSigner({ keyDir, name: 'carol', passphrase: PASS, validityDays: 30 });
    expect(carol.dir).toBe(path.join(keyDir, 'signers/carol'));
    expect(Date.parse(carol.notAfter) - Date.now()).toBeLessThan(31 * 86_400_000);
    await refusal(() => addSigner({ keyDir, name: 'carol', passphrase: PASS }), 'E_ALREADY_INITIALIZED');
    await refusal(() => addSigner({ keyDir, name: 'dave', passphrase: 'nope' }), 'E_PASSPHRASE');
    await refusal(
      () => addSigner({ keyDir: path.join(base, 'none'), name: 'dave', passphrase: PASS }),
      'E_NOT_INITIALIZED',
    );
  });

  it('refuses a signer whose certificate is expired or does not match its key', async () => {
    const later = new Date(Date.now() + 3 * 365 * 86_400_000);
    const err = await refusal(
      () => loadSigner(path.join(plainDir, 'signers/solo'), () => Promise.resolve(null), { now: later }),
      'E_KEY',
    );
    expect(err.message).toMatch(/expired/);
    const mixed = path.join(base, 'mixed');
    fs.cpSync(path.join(plainDir, 'signers/solo'), mixed, { recursive: true });
    fs.copyFileSync(path.join(plainDir, 'root/cert.pem'), path.join(mixed, 'cert.pem'));
    await refusal(() => loadSigner(mixed, () => Promise.resolve(null)), 'E_KEY');
  });

  it('validates trust anchors strictly and installs them once', () => {
    const target = path.join(base, 'installed', 'trust');
    const anchors = installTrust(init.trustDir, target);
    expect(anchors.rootKeyId).toBe(init.rootKeyId);
    expect(modeOf(target)).toBe(0o755);
    expect(modeOf(path.join(target, 'trust.json'))).toBe(0o644);
    expect(installTrust(init.trustDir, target).rootKeyId).toBe(init.rootKeyId);
    expect(() => installTrust(path.join(plainDir, 'trust'), target)).toThrow(/different trust anchors/);

    const bad = path.join(base, 'bad-trust');
    fs.cpSync(init.trustDir, bad, { recursive: true });
    const trust = JSON.parse(fs.readFileSync(path.join(bad, 'trust.json'), 'utf8')) as Record<string, unknown>;
    const variants: Array<[string, unknown]> = [
      ['extra key', { ...trust, extra: 1 }],
      ['wrong version', { ...trust, formatVersion: 2 }],
      ['other root', { ...trust, rootKeyId: 'a'.repeat(64) }],
    ];
    for (const [label, value] of variants) {
      fs.writeFileSync(path.join(bad, 'trust.json'), JSON.stringify(value));
      expect(() => loadTrustAnchors(bad), label).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
    }
    fs.writeFileSync(path.join(bad, 'trust.json'), JSON.stringify(trust));
    fs.copyFileSync(path.join(keyDir, 'signers/alice/cert.pem'), path.join(bad, 'root.pem'));
    expect(() => loadTrustAnchors(bad)).toThrow(expect.objectContaining({ code: 'E_INPUT' }));
  });

  it('takes the passphrase from the environment, and refuses without one off a terminal', async () => {
    const saved = process.env.ECLUSE_PASSPHRASE;
    try {
      expect(await resolvePassphrase({ noPassphrase: true, purpose: 'x' })).toBeNull();
      process.env.ECLUSE_PASSPHRASE = 'from-env';
      expect(await resolvePassphrase({ noPassphrase: false, purpose: 'x' })).toBe('from-env');
      delete process.env.ECLUSE_PASSPHRASE;
      if (!process.stdin.isTTY) {
        await refusal(() => resolvePassphrase({ noPassphrase: false, purpose: 'the root key' }), 'E_PASSPHRASE');
      }
    } finally {
      if (saved === undefined) delete process.env.ECLUSE_PASSPHRASE;
      else process.env.ECLUSE_PASSPHRASE = saved;
    }
  });
});
