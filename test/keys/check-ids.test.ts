/**
 * keys/ names the check that failed from the typed list of sneakernet/check-ids.ts: each refusal here is asserted by
 * class, code and check id, so a renamed or merged check fails a test rather than an operator's script or audit query.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EcluseError } from '../../sneakernet/errors.js';
import { type CheckId } from '../../sneakernet/check-ids.js';
import { readSignatureFile } from '../../keys/envelope.js';
import { checkValidity } from '../../keys/glance-signature.js';
import { readPrivateKey, writePrivateKey } from '../../keys/keyfile.js';
import { checkNewPassphrase, resolvePassphrase } from '../../keys/passphrase.js';
import { loadTrustAnchors } from '../../keys/trust.js';
import { readVendorBundle } from '../../keys/vendor.js';
import { initKeys } from '../../keys/ceremony.js';

async function refusal(run: () => unknown): Promise<EcluseError> {
  try {
    await run();
  } catch (e) {
    expect(e).toBeInstanceOf(EcluseError);
    return e as EcluseError;
  }
  throw new Error('expected a refusal');
}

function expectCheck(e: EcluseError, code: string, check: CheckId): void {
  expect(e.code).toBe(code);
  expect(e.context.check).toBe(check);
}

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-check-ids-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  delete process.env.ECLUSE_CHECK_IDS_TEST;
});

describe('keys/ refusals name their check', () => {
  it('a passphrase too short for a new key: passphrase-length', async () => {
    const e = await refusal(() => checkNewPassphrase('short', 'the site root key', 'ECLUSE_PASSPHRASE'));
    expectCheck(e, 'E_PASSPHRASE', 'passphrase-length');
  });

  it('a passphrase variable set but empty: passphrase', async () => {
    process.env.ECLUSE_CHECK_IDS_TEST = '';
    const e = await refusal(() =>
      resolvePassphrase({ noPassphrase: false, purpose: 'a test key', env: ['ECLUSE_CHECK_IDS_TEST'] }),
    );
    expectCheck(e, 'E_PASSPHRASE', 'passphrase');
  });

  it('a key file that is missing or not a key: key; encrypted without or with a wrong passphrase: passphrase', async () => {
    expectCheck(await refusal(() => readPrivateKey(path.join(dir, 'absent.pem'), async () => null)), 'E_KEY', 'key');
    fs.writeFileSync(path.join(dir, 'garbage.pem'), 'not a key');
    expectCheck(await refusal(() => readPrivateKey(path.join(dir, 'garbage.pem'), async () => null)), 'E_KEY', 'key');
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const file = path.join(dir, 'locked.pem');
    writePrivateKey(file, privateKey, 'a passphrase long enough');
    expectCheck(await refusal(() => readPrivateKey(file, async () => null)), 'E_PASSPHRASE', 'passphrase');
    const wrong = await refusal(() => readPrivateKey(file, async () => 'another long passphrase'));
    expectCheck(wrong, 'E_PASSPHRASE', 'passphrase');
    await expect(readPrivateKey(file, async () => 'a passphrase long enough')).resolves.toBeDefined();
  });

  it('a signature file that is not JSON: format; JSON that is not a Sigstore bundle: signature-format', async () => {
    expectCheck(await refusal(() => readSignatureFile('k.sigstore.json', Buffer.from('{'))), 'E_FORMAT', 'format');
    const e = await refusal(() => readSignatureFile('k.sigstore.json', Buffer.from('{"mediaType":"x"}')));
    expectCheck(e, 'E_FORMAT', 'signature-format');
  });

  it('a trust folder without its files: trust-anchors', async () => {
    expectCheck(await refusal(() => loadTrustAnchors(dir)), 'E_INPUT', 'trust-anchors');
  });

  it("a vendor's bundle that is not one: vendor-signature; a vendor certificate out of its validity: vendor-key", async () => {
    const bundle = await refusal(() => readVendorBundle(Buffer.from('not json'), 'debian-13'));
    expectCheck(bundle, 'E_VENDOR_SIGNATURE', 'vendor-signature');
    const expired = await refusal(() =>
      checkValidity({ notBefore: '2020-01-01T00:00:00Z', notAfter: '2021-01-01T00:00:00Z' }, 'acme', new Date()),
    );
    expectCheck(expired, 'E_VENDOR_UNTRUSTED', 'vendor-key');
  });

  it('a key ceremony with a signer named twice or badly: signer-name; over an existing key folder: keydir', async () => {
    const base = { passphrase: null };
    const badName = await refusal(() => initKeys({ ...base, out: dir, signers: ['Alice!'] }));
    expectCheck(badName, 'E_USAGE', 'signer-name');
    const twice = await refusal(() => initKeys({ ...base, out: dir, signers: ['alice', 'alice'] }));
    expectCheck(twice, 'E_USAGE', 'signer-name');
    fs.mkdirSync(path.join(dir, 'trust'));
    const existing = await refusal(() => initKeys({ ...base, out: dir, signers: ['alice'] }));
    expectCheck(existing, 'E_ALREADY_INITIALIZED', 'keydir');
  });
});
