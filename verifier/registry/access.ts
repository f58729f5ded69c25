/**
 * Who may pull from the registry: the Glance API's credentials, presented as container tools present them.
 *
 *   - a token in `Authorization: Bearer T`, as the password of `Authorization: Basic` (`podman login -u any -p T`,
 *     skopeo's `--creds any:T`, an auth file), or in `X-Auth-Token`;
 *   - an écluse token (`ecluse token create`, any role) pulls; at a Keystone site (`ecluse site keystone`) any valid
 *     Keystone token pulls too (images in the registry belong to no project);
 *   - without a valid token, the site setting `registry_anonymous_pulls` decides: `loopback` (the default) serves
 *     loopback clients as the Glance API does (nobody at a Keystone site), `anyone` serves everybody, `none` nobody;
 *   - otherwise 401 UNAUTHORIZED with a Basic challenge, which is what makes docker, podman and skopeo send the
 *     credentials they hold for this host.
 */
import type express from 'express';
import { EcluseError } from '../../sneakernet/errors.js';
import { getSetting, type Db } from '../db.js';
import { isLoopback, tokenRole } from '../glance/auth.js';
import type { KeystoneTokens } from '../glance/keystone-tokens.js';
import { RegistryHttpError } from './errors.js';

export const CHALLENGE = 'Basic realm="ecluse registry"';

/** Who the request is, for the journal: a token id, a Keystone user, or anonymous. */
export type Puller = { kind: 'token'; id: string } | { kind: 'keystone'; user: string } | { kind: 'anonymous' };

/** The token a request presents, whichever way a container tool sends it. */
export function presentedToken(req: express.Request): string | undefined {
  const auth = req.get('authorization');
  if (auth) {
    const m = /^(Basic|Bearer)\s+(\S{1,12000})\s*$/i.exec(auth);
    if (m?.[1] && m[2]) {
      if (m[1].toLowerCase() === 'bearer') return m[2];
      const decoded = Buffer.from(m[2], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0 && colon < decoded.length - 1) return decoded.slice(colon + 1);
    }
  }
  return req.get('x-auth-token') ?? undefined;
}

function unauthorized(): RegistryHttpError {
  return new RegistryHttpError(
    401,
    'UNAUTHORIZED',
    'authentication required: log in with an écluse token ("ecluse token create --role reader") or a Keystone token as the password',
    { headers: { 'WWW-Authenticate': CHALLENGE } },
  );
}

export function anonymousPulls(db: Db): 'loopback' | 'anyone' | 'none' {
  const v = getSetting(db, 'registry_anonymous_pulls');
  return v === 'anyone' || v === 'none' ? v : 'loopback';
}

/** Express middleware: sets `res.locals.puller` or answers 401 (503 when the site's Keystone cannot be asked). */
export function pullAccess(db: Db, keystone?: KeystoneTokens): express.RequestHandler {
  return async (req, res, next) => {
    const token = presentedToken(req);
    const known = token ? tokenRole(db, token) : undefined;
    if (known) {
      res.locals.puller = { kind: 'token', id: known.id } satisfies Puller;
      next();
      return;
    }
    if (token && keystone) {
      let identity;
      try {
        identity = await keystone.validate(token);
      } catch (e) {
        if (e instanceof EcluseError) {
          console.error(`registry api: ${e.message}`);
          throw new RegistryHttpError(503, 'UNAVAILABLE', "the site's Keystone cannot validate tokens now; try again");
        }
        throw e;
      }
      if (identity) {
        res.locals.puller = { kind: 'keystone', user: identity.userId } satisfies Puller;
        next();
        return;
      }
    }
    const anonymous = anonymousPulls(db);
    if (anonymous === 'anyone' || (anonymous === 'loopback' && !keystone && isLoopback(req.socket.remoteAddress))) {
      res.locals.puller = { kind: 'anonymous' } satisfies Puller;
      next();
      return;
    }
    throw unauthorized();
  };
}
