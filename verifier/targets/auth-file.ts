/**
 * Credentials for a registry from a containers auth file (containers-auth.json(5), what `podman login` and `skopeo
 * login` write): `{"auths": {"HOST[:PORT][/NAMESPACE...]": {"auth": base64("user:password")}}}`. The most specific
 * key naming the registry (and, when it has a path, a prefix of the repository) wins, as in podman. Credential
 * helpers and identity tokens are not followed: the operator is told to log in with a username and password.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { unreadableFile } from '../../sneakernet/input-file.js';

/** An auth file is a few entries; anything bigger is not one. */
export const AUTH_FILE_MAX_BYTES = 1024 * 1024;

export interface RegistryCredentials {
  username: string;
  password: string;
}

const entry = z.looseObject({
  auth: z.string().max(16_384).optional(),
  username: z.string().max(4096).optional(),
  password: z.string().max(16_384).optional(),
  identitytoken: z.string().max(16_384).optional(),
});
const authFile = z.looseObject({
  auths: z.record(z.string().max(1024), entry).optional(),
  credHelpers: z.record(z.string().max(1024), z.string().max(256)).optional(),
});

function input(file: string, message: string): EcluseError {
  return new EcluseError('E_INPUT', `${file}: ${message}`, { check: 'auth-file', file });
}

/** `https://host:5000/` or `host:5000` → `host:5000` (docker's legacy keys carry a scheme). */
function normalizeKey(key: string): string {
  return key.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

/**
 * The credentials `file` holds for `host` (HOST[:PORT]) and `repository` (the path pushed to, may be empty);
 * undefined when the file names neither. E_INPUT when the file is not an auth file or the entry is unusable.
 */
export function credentialsFor(file: string, host: string, repository = ''): RegistryCredentials | undefined {
  let text: string;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw input(file, 'is not a regular file');
    if (st.size > AUTH_FILE_MAX_BYTES)
      throw input(file, `is larger than ${AUTH_FILE_MAX_BYTES} bytes: not an auth file`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw unreadableFile(file, e, 'auth file');
  }
  let parsed: z.infer<typeof authFile>;
  try {
    parsed = authFile.parse(JSON.parse(text));
  } catch {
    throw input(
      file,
      'is not a containers auth file ({"auths": {"HOST": {"auth": "..."}}}); write it with "podman login --authfile FILE HOST"',
    );
  }
  const wanted = repository ? `${host}/${repository}` : host;
  const matches = (key: string) => key === host || (wanted + '/').startsWith(key + '/');
  const keys = Object.keys(parsed.auths ?? {})
    .filter((k) => matches(normalizeKey(k)))
    .sort((a, b) => normalizeKey(b).length - normalizeKey(a).length);
  const key = keys[0];
  if (key === undefined) {
    const helper = Object.keys(parsed.credHelpers ?? {}).find((k) => matches(normalizeKey(k)));
    if (helper !== undefined) {
      throw input(
        file,
        `the credentials for ${host} are kept by the credential helper "${parsed.credHelpers?.[helper] ?? ''}", which écluse does not run; log in with "podman login --authfile FILE ${host}" to write them into the file`,
      );
    }
    return undefined;
  }
  const e = parsed.auths?.[key] ?? {};
  if (e.identitytoken) {
    throw input(
      file,
      `the entry for ${key} holds an identity token, which écluse does not use; log in with a username and password ("podman login --authfile FILE ${host}")`,
    );
  }
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) throw input(file, `the "auth" of ${key} is not base64 of "user:password"`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (e.username && e.password !== undefined) return { username: e.username, password: e.password };
  throw input(file, `the entry for ${key} has no "auth" (base64 of "user:password")`);
}
