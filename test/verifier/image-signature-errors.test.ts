/** The image signer's refusals (verifier/image-signature.ts): each an EcluseError with its code and a next step. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EcluseError } from '../../sneakernet/errors.js';
import { openDb, type Db } from '../../verifier/db.js';
import { importHome } from '../../verifier/home.js';
import { imageSigner, setCertificateUuid, signSha256Digest } from '../../verifier/image-signature.js';

let dir: string;
let db: Db;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-signer-'));
  db = openDb(dir);
});
afterAll(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function thrown(fn: () => unknown): EcluseError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(EcluseError);
    return e as EcluseError;
  }
  throw new EcluseError('E_INTERNAL', 'expected a refusal');
}

describe('the image signer', () => {
  it('E_KEY when the certificate in the home is not the one of its key', async () => {
    await imageSigner(db, dir, 'paris-1'); // makes the pair
    const p = importHome(dir).signing;
    const other = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-signer-other-'));
    try {
      await imageSigner(db, other, 'paris-1');
      fs.copyFileSync(importHome(other).signing.cert, p.cert);
    } finally {
      fs.rmSync(other, { recursive: true, force: true });
    }
    const err = await imageSigner(db, dir, 'paris-1').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EcluseError);
    expect(err).toMatchObject({ code: 'E_KEY', context: { check: 'image-signing-key' } });
    expect((err as EcluseError).message).toBe(
      `${p.cert} is not the certificate of ${p.key}: put back the pair made together, or remove both files to make ` +
        'a new pair (then export the new certificate with "ecluse site cert" for Barbican)',
    );
  });

  it('E_USAGE for a Barbican uuid that is not a uuid', () => {
    const err = thrown(() => setCertificateUuid(db, 'not-a-uuid'));
    expect(err.code).toBe('E_USAGE');
    expect(err.message).toBe(`"not-a-uuid" is not a uuid: give the uuid at the end of the Barbican secret's href`);
  });

  it('E_KEY for a signing key that is not RSA', () => {
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const err = thrown(() => signSha256Digest(privateKey, 'a'.repeat(64)));
    expect(err).toMatchObject({ code: 'E_KEY', context: { check: 'image-signing-key' } });
  });
});
