/**
 * Reading a registry's credentials from a containers auth file as podman and skopeo write it: the most specific key
 * wins (host/namespace over host), docker's legacy https:// keys, username/password fields; credential helpers,
 * identity tokens, malformed and oversized files refused with E_INPUT naming what to do.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EcluseError } from '../../../sneakernet/errors.js';
import { AUTH_FILE_MAX_BYTES, credentialsFor } from '../../../verifier/targets/auth-file.js';

let dir: string;
const b64 = (s: string) => Buffer.from(s).toString('base64');

function file(content: unknown): string {
  const f = path.join(dir, `auth-${Math.random().toString(36).slice(2)}.json`);
  fs.writeFileSync(f, typeof content === 'string' ? content : JSON.stringify(content));
  return f;
}

function refusal(f: () => unknown): EcluseError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(EcluseError);
    return e as EcluseError;
  }
  throw new Error('no refusal');
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-authfile-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('credentialsFor', () => {
  it('the entry of the host, the most specific one for a repository prefix, legacy keys', () => {
    const f = file({
      auths: {
        'registry.site:5000': { auth: b64('site:pw1') },
        'registry.site:5000/mirror': { auth: b64('mirror:pw:with:colons') },
        'https://legacy.example/': { auth: b64('old:pw3') },
        other: { username: 'u', password: 'p' },
      },
    });
    expect(credentialsFor(f, 'registry.site:5000')).toEqual({ username: 'site', password: 'pw1' });
    expect(credentialsFor(f, 'registry.site:5000', 'mirror')).toEqual({
      username: 'mirror',
      password: 'pw:with:colons',
    });
    expect(credentialsFor(f, 'registry.site:5000', 'mirrors')).toEqual({ username: 'site', password: 'pw1' });
    expect(credentialsFor(f, 'legacy.example')).toEqual({ username: 'old', password: 'pw3' });
    expect(credentialsFor(f, 'other')).toEqual({ username: 'u', password: 'p' });
    expect(credentialsFor(f, 'registry.site')).toBeUndefined();
  });

  it('refuses what it cannot use, saying how to log in', () => {
    const helper = refusal(() => credentialsFor(file({ credHelpers: { 'r.site': 'secretservice' } }), 'r.site'));
    expect(helper).toMatchObject({ code: 'E_INPUT' });
    expect(helper.message).toContain('credential helper "secretservice"');
    expect(helper.message).toContain('podman login --authfile FILE r.site');
    const token = refusal(() => credentialsFor(file({ auths: { 'r.site': { identitytoken: 'x' } } }), 'r.site'));
    expect(token.message).toContain('identity token');
    const notBase64 = refusal(() => credentialsFor(file({ auths: { 'r.site': { auth: b64('nocolon') } } }), 'r.site'));
    expect(notBase64.message).toContain('is not base64 of "user:password"');
    expect(refusal(() => credentialsFor(file('{"auths": [1]}'), 'r.site'))).toMatchObject({ code: 'E_INPUT' });
    expect(refusal(() => credentialsFor(file('not json'), 'r.site')).message).toContain(
      'is not a containers auth file',
    );
    const big = file(' '.repeat(AUTH_FILE_MAX_BYTES + 1));
    expect(refusal(() => credentialsFor(big, 'r.site')).message).toContain('not an auth file');
    expect(refusal(() => credentialsFor(path.join(dir, 'missing.json'), 'r.site'))).toMatchObject({
      code: 'E_NOT_FOUND',
    });
    expect(refusal(() => credentialsFor(dir, 'r.site'))).toMatchObject({ code: 'E_INPUT' });
  });
});
