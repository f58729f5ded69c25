/**
 * Vendor signatures: what a vendor publishes to prove an artifact is theirs, checked against keys the operator
 * pinned. Used by both stations (relay/ when fetching a feed, verifier/ when re-checking the evidence a statement
 * carries), so it lives here with the other verification code.
 *
 * - OpenPGP over a checksum file (SHA256SUMS + SHA256SUMS.gpg, SHA512SUMS + .sign, clear-signed CHECKSUM): verified by
 *   Debian's `gpgv` (GnuPG) against a keyring holding only the pinned keys, in a throw-away home. No OpenPGP is parsed
 *   here beyond ASCII armor and the primary key's fingerprint (for display and pinning).
 * - Sigstore bundles by a vendor key (`cosign sign-blob --key ... --bundle`, or a DSSE in-toto statement naming the
 *   artifact): verified offline with @sigstore/verify, with a key finder that returns only the pinned key (the hint is
 *   chosen by whoever made the bundle). Transparency-log entries and timestamps are not used offline and are dropped.
 *
 * Every failure is a refusal: E_VENDOR_SIGNATURE (the signature does not verify), E_VENDOR_UNTRUSTED (made by a key
 * that is not pinned, or unusable evidence), E_VENDOR_DIGEST (the vendor published another digest).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { verifiesWithKey } from './offline-verifier.js';
import { EcluseError } from '../sneakernet/errors.js';
import { keyIdOf } from './keyid.js';
import { checkId } from '../sneakernet/check-ids.js';

// ---------------------------------------------------------------------------------------------------------------
// OpenPGP keys: armor and fingerprints

/** Binary OpenPGP packets from an ASCII-armored block (or the bytes themselves when they are not armored). */
export function dearmor(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1');
  const begin = /-----BEGIN PGP [A-Z ]+-----\r?\n/.exec(text);
  if (!begin) return bytes;
  const rest = text.slice(begin.index + begin[0].length);
  const end = rest.indexOf('-----END PGP');
  if (end < 0) throw new EcluseError('E_KEY', 'an ASCII-armored OpenPGP block has no END line');
  const lines = rest.slice(0, end).split(/\r?\n/);
  // Armor headers (Version:, Comment:) end at the first empty line; a block may have none.
  const blank = lines.findIndex((l) => l.trim() === '');
  const hasHeaders = lines.slice(0, blank < 0 ? 0 : blank).every((l) => /^[A-Za-z]+: /.test(l));
  const body = (hasHeaders && blank >= 0 ? lines.slice(blank + 1) : lines).filter(
    (l) => l.trim() !== '' && !l.startsWith('='),
  );
  return Buffer.from(body.join(''), 'base64');
}

/** The fingerprint (uppercase hex) of the first public key in binary OpenPGP packets: v4 SHA-1, v5/v6 SHA-256. */
export function openpgpFingerprint(packets: Buffer): string {
  const first = packets[0];
  if (first === undefined || (first & 0x80) === 0) throw new EcluseError('E_KEY', 'not an OpenPGP public key');
  let tag: number;
  let offset: number;
  let length: number;
  if (first & 0x40) {
    tag = first & 0x3f;
    const l0 = packets[1] ?? 0;
    if (l0 < 192) [length, offset] = [l0, 2];
    else if (l0 < 224) [length, offset] = [((l0 - 192) << 8) + (packets[2] ?? 0) + 192, 3];
    else if (l0 === 255) [length, offset] = [packets.readUInt32BE(2), 6];
    else throw new EcluseError('E_KEY', 'an OpenPGP key packet with a partial length');
  } else {
    tag = (first >> 2) & 0x0f;
    const type = first & 0x03;
    if (type === 0) [length, offset] = [packets[1] ?? 0, 2];
    else if (type === 1) [length, offset] = [packets.readUInt16BE(1), 3];
    else if (type === 2) [length, offset] = [packets.readUInt32BE(1), 5];
    else throw new EcluseError('E_KEY', 'an OpenPGP key packet of indeterminate length');
  }
  if (tag !== 6)
    throw new EcluseError('E_KEY', `the OpenPGP data does not start with a public key (packet tag ${tag})`);
  const body = packets.subarray(offset, offset + length);
  if (body.length !== length) throw new EcluseError('E_KEY', 'the OpenPGP public key packet is truncated');
  const version = body[0];
  if (version === 4) {
    const head = Buffer.from([0x99, (length >> 8) & 0xff, length & 0xff]);
    return crypto.createHash('sha1').update(head).update(body).digest('hex').toUpperCase();
  }
  if (version === 5 || version === 6) {
    const head = Buffer.alloc(5);
    head[0] = version === 5 ? 0x9a : 0x9b;
    head.writeUInt32BE(length, 1);
    return crypto.createHash('sha256').update(head).update(body).digest('hex').toUpperCase();
  }
  throw new EcluseError('E_KEY', `OpenPGP key version ${String(version)} is not supported`);
}

/** A pinned OpenPGP key: its binary packets and primary fingerprint. Throws E_KEY when it is not a public key. */
export function readOpenPgpKey(bytes: Buffer): { packets: Buffer; fingerprint: string } {
  const packets = dearmor(bytes);
  return { packets, fingerprint: openpgpFingerprint(packets) };
}

// ---------------------------------------------------------------------------------------------------------------
// gpgv

export interface OpenPgpVerified {
  /** The signed bytes: the data itself (detached signature), or what gpgv extracted (clear-signed). */
  content: Buffer;
  /** Primary-key fingerprint of the pinned key that made the good signature. */
  fingerprint: string;
}

/** Where gpgv is; tests and unusual installs may set ECLUSE_GPGV. */
function gpgvPath(): string {
  return process.env.ECLUSE_GPGV ?? 'gpgv';
}

/**
 * Verifies an OpenPGP signature over `data` (detached `signature`, or `data` clear-signed when `signature` is null)
 * with `gpgv`, against a keyring holding exactly `keys` (binary packets). Needs one good signature by a pinned key
 * and no bad signature.
 */
export function verifyOpenPgp(o: {
  keys: Buffer[];
  data: Buffer;
  signature: Buffer | null;
  what: string;
}): OpenPgpVerified {
  if (o.keys.length === 0) throw new EcluseError('E_VENDOR_UNTRUSTED', `${o.what}: no vendor OpenPGP key is pinned`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-gpgv-'));
  try {
    fs.chmodSync(dir, 0o700);
    const keyring = path.join(dir, 'pinned.gpg');
    fs.writeFileSync(keyring, Buffer.concat(o.keys));
    const dataFile = path.join(dir, 'data');
    fs.writeFileSync(dataFile, o.data);
    const out = path.join(dir, 'content');
    const args = ['--homedir', dir, '--keyring', keyring, '--status-fd', '1'];
    if (o.signature) {
      const sigFile = path.join(dir, 'data.sig');
      fs.writeFileSync(sigFile, o.signature);
      args.push(sigFile, dataFile);
    } else args.push('--output', out, dataFile);
    const r = spawnSync(gpgvPath(), args, { encoding: 'utf8', timeout: 60_000, env: { ...process.env, LC_ALL: 'C' } });
    if (r.error) {
      throw new EcluseError(
        'E_IO',
        `cannot run gpgv to check ${o.what} (install the Debian package gpgv): ${r.error.message}`,
      );
    }
    const status = r.stdout.split('\n').filter((l) => l.startsWith('[GNUPG:] '));
    const words = (l: string) => l.slice('[GNUPG:] '.length).split(' ');
    const bad = status.find((l) => /^\[GNUPG:\] (BADSIG|EXPSIG|EXPKEYSIG|REVKEYSIG) /.test(l));
    if (bad) {
      const w = words(bad);
      const kind = w[0] === 'BADSIG' ? 'is not valid' : `is not acceptable (${(w[0] ?? '').toLowerCase()})`;
      throw new EcluseError('E_VENDOR_SIGNATURE', `${o.what}: the OpenPGP signature by key ${w[1] ?? '?'} ${kind}`, {
        check: checkId('vendor-signature'),
      });
    }
    const valid = status.map(words).find((w) => w[0] === 'VALIDSIG');
    if (!valid || r.status !== 0) {
      const missing = status.map(words).find((w) => w[0] === 'NO_PUBKEY' || (w[0] === 'ERRSIG' && w[6] === '9'));
      if (missing) {
        throw new EcluseError(
          'E_VENDOR_UNTRUSTED',
          `${o.what} is signed by OpenPGP key ${missing[1] ?? '?'}, which is not pinned for this vendor`,
          { check: checkId('vendor-key') },
        );
      }
      if (!valid) {
        throw new EcluseError(
          'E_VENDOR_SIGNATURE',
          `${o.what}: no valid OpenPGP signature (${(r.stderr || 'gpgv found none').trim().split('\n').pop() ?? ''})`,
          { check: checkId('vendor-signature') },
        );
      }
    }
    const fingerprint = (valid[10] ?? valid[1] ?? '').toUpperCase();
    const content = o.signature ? o.data : fs.readFileSync(out);
    return { content, fingerprint };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Checksum files

export interface ChecksumEntry {
  file: string;
  algorithm: 'sha256' | 'sha512';
  digest: string;
}

/** Parses GNU (`<hex>  name`, `<hex> *name`) and BSD (`SHA256 (name) = <hex>`) checksum lines; others are skipped. */
export function parseChecksums(text: string): ChecksumEntry[] {
  const out: ChecksumEntry[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    const gnu = /^([0-9a-fA-F]{64}|[0-9a-fA-F]{128}) [ *](.+)$/.exec(line);
    const bsd = /^(SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]{64}|[0-9a-fA-F]{128})$/.exec(line);
    let digest: string | undefined;
    let file: string | undefined;
    if (gnu) [digest, file] = [gnu[1], gnu[2]];
    else if (bsd) [digest, file] = [bsd[3], bsd[2]];
    if (!digest || !file) continue;
    const algorithm = digest.length === 64 ? 'sha256' : 'sha512';
    if (bsd && bsd[1]?.toLowerCase() !== algorithm) continue;
    out.push({ file: file.replace(/^\.\//, ''), algorithm, digest: digest.toLowerCase() });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Sigstore bundles by a vendor key

export interface SigstoreVendorCheck {
  bundle: Buffer;
  /** The pinned vendor public keys (PEM SPKI). */
  keys: string[];
  /** The artifact's digests as computed (or as the signed statement gives them). */
  sha256: string;
  sha512?: string;
  /** The artifact's file, needed only for a message signature (streamed, never held in memory). */
  artifactFile?: string;
  what: string;
}

/** Parses a vendor's Sigstore bundle; E_VENDOR_SIGNATURE when it is not one. */
export function readVendorBundle(bytes: Buffer, what: string): Bundle {
  try {
    return bundleFromJSON(JSON.parse(bytes.toString('utf8')) as unknown);
  } catch (e) {
    throw new EcluseError('E_VENDOR_SIGNATURE', `${what}: not a Sigstore bundle (${(e as Error).message})`, {
      check: checkId('vendor-signature'),
    });
  }
}

/** True when a message-signature bundle (its signature needs the artifact bytes, not only their digest). */
export function isMessageSignature(bytes: Buffer): boolean {
  try {
    return readVendorBundle(bytes, 'bundle').content.$case === 'messageSignature';
  } catch {
    return false;
  }
}

/**
 * A message signature (cosign sign-blob: SHA-256 over the artifact's bytes) checked with Node's crypto while the file
 * streams through it: @sigstore/verify would need the whole artifact in memory.
 */
async function messageSignatureValid(file: string, signature: Buffer, key: crypto.KeyObject): Promise<boolean> {
  const verify = crypto.createVerify('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 1024 * 1024 })) verify.update(chunk as Buffer);
  try {
    return verify.verify(key, signature);
  } catch {
    return false;
  }
}

/** Returns the key id (SHA-256 of the SPKI DER) of the pinned key that verified the bundle. */
export async function verifySigstoreBlob(c: SigstoreVendorCheck): Promise<{ keyId: string }> {
  const bundle = readVendorBundle(c.bundle, c.what);
  if (bundle.verificationMaterial.content.$case !== 'publicKey') {
    throw new EcluseError(
      'E_VENDOR_UNTRUSTED',
      `${c.what}: the Sigstore bundle is certificate-keyed (keyless); offline only a pinned vendor key is accepted`,
      { check: checkId('vendor-key') },
    );
  }
  // Offline there is no log to check inclusion against: rely on the pinned key alone.
  const offline: Bundle = {
    ...bundle,
    verificationMaterial: { ...bundle.verificationMaterial, tlogEntries: [], timestampVerificationData: undefined },
  };
  const content = bundle.content;
  if (content.$case === 'messageSignature') {
    const md = content.messageSignature.messageDigest;
    if (md && md.digest.length > 0 && md.digest.toString('hex') !== c.sha256) {
      throw new EcluseError('E_VENDOR_DIGEST', `${c.what}: the vendor signed another digest than the artifact's`, {
        check: checkId('vendor-digest'),
      });
    }
    if (!c.artifactFile) {
      throw new EcluseError(
        'E_INTERNAL',
        `${c.what}: a message signature was checked without the artifact's file (a bug: report it with this line)`,
      );
    }
  } else {
    if (content.dsseEnvelope.payloadType !== 'application/vnd.in-toto+json') {
      throw new EcluseError('E_VENDOR_SIGNATURE', `${c.what}: the DSSE payload is not an in-toto statement`, {
        check: checkId('vendor-signature'),
      });
    }
  }
  const keys = c.keys.map((pem) => crypto.createPublicKey(pem));
  if (keys.length === 0) throw new EcluseError('E_VENDOR_UNTRUSTED', `${c.what}: no vendor key is pinned`);
  let verifiedBy: crypto.KeyObject | null = null;
  for (const key of keys) {
    const valid =
      content.$case === 'messageSignature'
        ? await messageSignatureValid(c.artifactFile as string, content.messageSignature.signature, key)
        : verifiesWithKey(offline, key);
    if (valid) {
      verifiedBy = key;
      break;
    }
  }
  if (!verifiedBy) {
    // The hint only picks the message: a bundle naming a pinned key whose signature fails is a bad signature.
    const hint = bundle.verificationMaterial.content.publicKey.hint;
    const pinnedIds = keys.flatMap((k) => {
      const id = keyIdOf(k);
      return [id, Buffer.from(id, 'hex').toString('base64')];
    });
    if (hint !== '' && pinnedIds.includes(hint)) {
      throw new EcluseError(
        'E_VENDOR_SIGNATURE',
        `${c.what}: the Sigstore signature by the pinned vendor key does not verify`,
        {
          check: checkId('vendor-signature'),
        },
      );
    }
    throw new EcluseError(
      'E_VENDOR_UNTRUSTED',
      `${c.what}: the Sigstore signature does not verify with any pinned vendor key (${keys.length} pinned)`,
      { check: checkId('vendor-key') },
    );
  }
  if (content.$case === 'dsseEnvelope') {
    let statement: { subject?: Array<{ digest?: Record<string, string> }> };
    try {
      statement = JSON.parse(content.dsseEnvelope.payload.toString('utf8')) as typeof statement;
    } catch {
      throw new EcluseError('E_VENDOR_SIGNATURE', `${c.what}: the signed in-toto statement is not JSON`, {
        check: checkId('vendor-signature'),
      });
    }
    const named = (statement.subject ?? []).some(
      (s) => s.digest?.sha256 === c.sha256 || (c.sha512 !== undefined && s.digest?.sha512 === c.sha512),
    );
    if (!named) {
      throw new EcluseError(
        'E_VENDOR_DIGEST',
        `${c.what}: the vendor's signed statement does not name this artifact's digest`,
        {
          check: checkId('vendor-digest'),
        },
      );
    }
  }
  return { keyId: keyIdOf(verifiedBy) };
}
