/**
 * The site root this import station trusts now: the one installed by `ecluse site init`, or a newer one pinned since
 * by a verified rotation (root-updates.ts writes it; the site reads it when it opens).
 */
import crypto from 'node:crypto';
import { keyIdOf } from '../keys/keyid.js';
import type { TrustAnchors } from '../keys/trust.js';
import { getSetting, type Db } from './db.js';

/** The newest root pinned by rotation, if it is newer than the installed trust folder's. */
export function rotatedAnchors(db: Db, installed: TrustAnchors): TrustAnchors {
  const pem = getSetting(db, 'root_pem');
  const version = Number(getSetting(db, 'root_version') ?? '0');
  if (!pem || version <= installed.rootVersion) return installed;
  const root = new crypto.X509Certificate(pem);
  return { root, rootKeyId: keyIdOf(root.publicKey), rootVersion: version };
}
