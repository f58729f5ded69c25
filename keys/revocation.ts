/**
 * Signer revocation without a visit inside. `ecluse keys revoke NAME` (a root ceremony) writes a revocation list signed
 * by the site root: `KEYDIR/trust/revocations.sigstore.json`, a Sigstore bundle whose DSSE payload (type
 * REVOCATIONS_PAYLOAD_TYPE) lists the revoked key ids with a version that only grows. Every export copies the newest
 * list onto the media (`<bundle>/trust/revocations.sigstore.json`); the import station accepts it only when it is
 * signed by the pinned root and newer than the list it holds, and from then on refuses every signature by a revoked
 * key (E_REVOKED), whatever bundle it comes in.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EcluseError } from '../sneakernet/errors.js';
import { LIMITS } from '../sneakernet/limits.js';
import { KEY_ID_PATTERN } from '../sneakernet/layout.js';
import { parseBoundedJson } from '../sneakernet/statement.js';
import { CERT_FILE, KEY_FILE } from './ceremony.js';
import { readSignatureFile } from './envelope.js';
import { readPrivateKey } from './keyfile.js';
import { keyIdOf } from './keyid.js';
import { signDsse } from './signer.js';
import type { TrustAnchors } from './trust.js';
import { cryptoValid } from './verify.js';
import { isoSeconds } from '../sneakernet/statement.js';
import { checkId } from '../sneakernet/check-ids.js';

export const REVOCATIONS_PAYLOAD_TYPE = 'application/vnd.ecluse.revocations+json';
export const REVOCATIONS_FILE = 'revocations.sigstore.json';
const REVOCATIONS_TYPE = 'https://ecluse.dev/revocations/v1';

export const revocationListSchema = z.strictObject({
  _type: z.literal(REVOCATIONS_TYPE),
  rootKeyId: z.string().regex(KEY_ID_PATTERN),
  version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  issued: z.iso.datetime({ offset: false, precision: 0 }),
  revoked: z
    .array(
      z.strictObject({
        keyId: z.string().regex(KEY_ID_PATTERN),
        name: z.string().min(1).max(64),
        reason: z.string().max(1024),
        revokedAt: z.iso.datetime({ offset: false, precision: 0 }),
      }),
    )
    .max(10_000),
});

export type RevocationList = z.infer<typeof revocationListSchema>;

/** Verifies a revocation list read from media against the pinned root. */
export function verifyRevocationList(bytes: Buffer, anchors: TrustAnchors): RevocationList {
  const notRoot = () =>
    new EcluseError('E_SIGNATURE', 'the revocation list on the media is not signed by this site root', {
      check: checkId('revocations'),
    });
  // Whose key it names decides first: a list from another root is a signature problem, not a format one.
  const raw = parseBoundedJson(bytes, 'the revocation list', LIMITS.signatureFileBytes) as {
    verificationMaterial?: { publicKey?: { hint?: unknown } };
  };
  if (raw?.verificationMaterial?.publicKey?.hint !== anchors.rootKeyId) throw notRoot();
  const file = readSignatureFile(`${anchors.rootKeyId}.sigstore.json`, bytes, REVOCATIONS_PAYLOAD_TYPE);
  if (file.keyId !== anchors.rootKeyId || !cryptoValid(file, anchors.root.publicKey)) {
    throw notRoot();
  }
  const parsed = revocationListSchema.safeParse(
    parseBoundedJson(file.payload, 'the revocation list', LIMITS.statementBytes),
  );
  if (!parsed.success || parsed.data.rootKeyId !== anchors.rootKeyId) {
    throw new EcluseError('E_FORMAT', 'the revocation list on the media is malformed', {
      check: checkId('revocations'),
    });
  }
  return parsed.data;
}

/** Reads the list of a KEYDIR (trust/revocations.sigstore.json), verified against its own root; null when none. */
export function readKeyDirRevocations(
  keyDir: string,
  anchors: TrustAnchors,
): { list: RevocationList; bytes: Buffer } | null {
  const file = path.join(keyDir, 'trust', REVOCATIONS_FILE);
  if (!fs.existsSync(file)) return null;
  const bytes = fs.readFileSync(file);
  return { list: verifyRevocationList(bytes, anchors), bytes };
}

/**
 * The root ceremony that revokes signer `name` of KEYDIR: adds its key id to the list, bumps the version, signs the
 * list with the root key and writes it to KEYDIR/trust/. The next export carries it inside.
 */
export async function revokeSigner(o: {
  keyDir: string;
  name: string;
  reason: string;
  anchors: TrustAnchors;
  passphrase: () => Promise<string | null>;
  now?: Date;
}): Promise<RevocationList> {
  const signerCert = path.join(o.keyDir, 'signers', o.name, CERT_FILE);
  if (!fs.existsSync(signerCert)) throw new EcluseError('E_NOT_FOUND', `no signer ${o.name} in ${o.keyDir}/signers`);
  const keyId = keyIdOf(new crypto.X509Certificate(fs.readFileSync(signerCert)).publicKey);
  const current = readKeyDirRevocations(o.keyDir, o.anchors)?.list;
  if (current?.revoked.some((r) => r.keyId === keyId)) {
    throw new EcluseError('E_ALREADY_INITIALIZED', `signer ${o.name} (key ${keyId.slice(0, 12)}) is already revoked`);
  }
  const now = isoSeconds(o.now ?? new Date());
  const list: RevocationList = {
    _type: REVOCATIONS_TYPE,
    rootKeyId: o.anchors.rootKeyId,
    version: (current?.version ?? 0) + 1,
    issued: now,
    revoked: [...(current?.revoked ?? []), { keyId, name: o.name, reason: o.reason, revokedAt: now }],
  };
  const rootKey = await readPrivateKey(path.join(o.keyDir, 'root', KEY_FILE), o.passphrase);
  if (keyIdOf(crypto.createPublicKey(rootKey)) !== o.anchors.rootKeyId) {
    throw new EcluseError('E_KEY', `${o.keyDir}/root/${KEY_FILE} is not the key of the site root`);
  }
  await writeRevocationList(o.keyDir, rootKey, list);
  return list;
}

/** The signed file (JSON text) of `list`, signed with the root key. */
export function signRevocationList(rootKey: crypto.KeyObject, list: RevocationList): Promise<string> {
  return signDsse(rootKey, REVOCATIONS_PAYLOAD_TYPE, Buffer.from(JSON.stringify(list)));
}

/** Signs `list` with the root key and writes it to KEYDIR/trust/ (atomically). */
export async function writeRevocationList(
  keyDir: string,
  rootKey: crypto.KeyObject,
  list: RevocationList,
): Promise<void> {
  const signed = await signRevocationList(rootKey, list);
  const target = path.join(keyDir, 'trust', REVOCATIONS_FILE);
  fs.writeFileSync(`${target}.tmp`, signed, { mode: 0o644 });
  fs.renameSync(`${target}.tmp`, target);
}
