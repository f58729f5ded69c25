/**
 * `ecluse keys passwd`: each operator gives their signer key a passphrase of their own; export then unlocks each
 * --signer with its own ECLUSE_PASSPHRASE_<NAME>. A wrong current passphrase changes nothing.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ecluse, ecluseOk, makeKeys, PASSPHRASE, tmpDir, type Keys, mediaDir } from '../helpers/world.js';

describe('keys passwd', () => {
  let dir: string;
  let keys: Keys;
  beforeAll(async () => {
    dir = tmpDir();
    keys = await makeKeys(path.join(dir, 'keys'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('re-encrypts one signer key under its own passphrase; export unlocks each signer with its own', async () => {
    const aliceKey = path.join(keys.signer('alice'), 'key.pem');
    const before = fs.readFileSync(aliceKey, 'utf8');

    // A wrong current passphrase: refused, nothing changes.
    const wrong = await ecluse(['keys', 'passwd', keys.signer('alice'), '--json'], {
      env: { ECLUSE_PASSPHRASE: 'not it', ECLUSE_NEW_PASSPHRASE: 'alice only, hers' },
    });
    expect(wrong.code).toBe(3); // a local failure, not a refusal of media
    expect(wrong.json).toMatchObject({ ok: false, code: 'E_PASSPHRASE' });
    expect(fs.readFileSync(aliceKey, 'utf8')).toBe(before);

    // No new passphrase and no terminal: refused, nothing changes.
    const none = await ecluse(['keys', 'passwd', keys.signer('alice'), '--json']);
    expect(none.json).toMatchObject({ ok: false, code: 'E_PASSPHRASE' });
    expect(none.json).toMatchObject({ message: expect.stringMatching(/ECLUSE_NEW_PASSPHRASE/) });
    expect(fs.readFileSync(aliceKey, 'utf8')).toBe(before);

    const r = await ecluseOk(['keys', 'passwd', keys.signer('alice'), '--json'], {
      env: { ECLUSE_NEW_PASSPHRASE: 'alice only, hers' },
    });
    expect(r.json).toMatchObject({ ok: true, file: aliceKey, kdf: 'scrypt' });
    expect(fs.statSync(aliceKey).mode & 0o777).toBe(0o600);
    expect(fs.readdirSync(keys.signer('alice')).filter((f) => f.startsWith('.'))).toEqual([]);
    expect(execFileSync('openssl', ['asn1parse', '-in', aliceKey]).toString()).toMatch(/:scrypt/);
    // The same key: the certificate still matches it.
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(keys.signer('alice'), 'cert.pem')));
    const unlocked = crypto.createPrivateKey({ key: fs.readFileSync(aliceKey), passphrase: 'alice only, hers' });
    expect(cert.checkPrivateKey(unlocked)).toBe(true);

    const image = path.join(dir, 'disk.raw');
    fs.writeFileSync(image, crypto.randomBytes(300_000));
    const out = path.join(dir, 'outside');
    await ecluseOk(['relay', 'add', image, '--name', 'disk', '--version', '1', '--disk-format', 'raw'], { home: out });
    const exportArgs = (media: string) => [
      'export',
      '--to',
      mediaDir(path.join(dir, media)),
      '--site',
      'paris-1',
      '--signer',
      keys.signer('alice'),
      '--signer',
      keys.signer('bob'),
      '--json',
    ];
    // bob's passphrase (the shared one) no longer opens alice's key.
    const shared = await ecluse(exportArgs('stick-1'), { home: out });
    expect(shared.json).toMatchObject({ ok: false, code: 'E_PASSPHRASE' });
    const own = await ecluseOk(exportArgs('stick-2'), {
      home: out,
      env: { ECLUSE_PASSPHRASE_ALICE: 'alice only, hers', ECLUSE_PASSPHRASE: PASSPHRASE },
    });
    expect(own.json).toMatchObject({ ok: true });
  });
});
