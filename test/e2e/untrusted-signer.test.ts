/**
 * A bundle signed with a certificate the site root signed but our ceremony would never issue (minted with the
 * `openssl` CLI from the root's key, without the codeSigning extended key usage): export writes it, import refuses
 * it through the CLI with E_UNTRUSTED_SIGNER and the exact line an operator reads, and leaves everything as it was.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyIdOf, shortKeyId } from '../../keys/keyid.js';
import { opensslIssue, opensslRsaKey, SIGNER_EXTENSIONS } from '../helpers/openssl-ca.js';
import { expectImportRefused, makeKeys, PASSPHRASE, tmpDir, world, type Keys, type World } from '../helpers/world.js';

describe('import through the CLI, signer certificate minted by openssl', () => {
  let keysDir: string;
  let keys: Keys;
  let w: World | undefined;

  beforeAll(async () => {
    keysDir = tmpDir('ecluse-e2e-keys-');
    keys = await makeKeys(keysDir);
  });
  afterAll(() => {
    w?.cleanup();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  it('E_UNTRUSTED_SIGNER: the certificate does not allow code signing', async () => {
    // signers/eve: an openssl key, and a certificate the site root signed with everything but codeSigning.
    const eve = path.join(keysDir, 'signers', 'eve');
    fs.mkdirSync(eve, { recursive: true, mode: 0o700 });
    const key = opensslRsaKey(eve, 'key', 3072);
    fs.renameSync(key.file, path.join(eve, 'key.pem'));
    const cert = opensslIssue(eve, 'cert', {
      keyFile: path.join(eve, 'key.pem'),
      subject: '/CN=eve/OU=signer/O=ecluse',
      ca: {
        cert: path.join(keysDir, 'root', 'cert.pem'),
        key: path.join(keysDir, 'root', 'key.pem'),
        passphrase: PASSPHRASE,
      },
      extensions: SIGNER_EXTENSIONS.filter((l) => !l.startsWith('extendedKeyUsage')),
    });
    expect(cert).toBe(fs.readFileSync(path.join(eve, 'cert.pem'), 'utf8'));
    fs.writeFileSync(path.join(eve, 'signer.json'), JSON.stringify({ name: 'eve' }));

    w = await world({ keys });
    await w.addImage('img', '1.0.0', 64 * 1024);
    const media = w.path('media');
    await w.exportTo(media, [], { signers: [eve] });

    const r = await expectImportRefused(w, media, 'E_UNTRUSTED_SIGNER');
    const line =
      `signature 1 of 1 was made by key ${shortKeyId(keyIdOf(key.key))} whose certificate does not allow code ` +
      `signing (1 distinct trusted signer required, 0 found); sign it again outside with enough trusted signers: ` +
      `ecluse export --resend N --site ${w.site} --to MEDIA --signer DIR --signer DIR ` +
      `(N: the bundle's sequence, shown by "ecluse inspect MEDIA")`;
    expect(r.json).toMatchObject({ ok: false, code: 'E_UNTRUSTED_SIGNER', message: line });
    expect(r.stderr.trimEnd().split('\n').pop()).toBe(`E_UNTRUSTED_SIGNER: ${line}`);
  });
});
