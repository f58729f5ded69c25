/**
 * Trust anchors pinned inside the site: `trust/root.pem` (the root CA certificate) and `trust/trust.json`
 * (`{"formatVersion":1,"rootVersion":1,"rootKeyId":"<hex>","createdAt":"ISO"}`). Both are checked strictly on load:
 * anything unexpected is E_INPUT.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EcluseError } from '../sneakernet/errors.js';
import { KEY_ID_PATTERN } from '../sneakernet/layout.js';
import { parseBoundedJson } from '../sneakernet/statement.js';
import { readCertificateFields } from './der.js';
import { keyIdOf } from './keyid.js';
import { checkId } from '../sneakernet/check-ids.js';

export const ROOT_CERT_FILE = 'root.pem';
export const TRUST_FILE = 'trust.json';
const MAX_TRUST_FILE_BYTES = 64 * 1024;

export const trustFileSchema = z.strictObject({
  formatVersion: z.literal(1),
  rootVersion: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  rootKeyId: z.string().regex(KEY_ID_PATTERN, '64 lowercase hex'),
  createdAt: z.iso.datetime({ offset: false }),
});
export type TrustFile = z.infer<typeof trustFileSchema>;

/** The pinned root, as the verifier uses it. */
export interface TrustAnchors {
  root: crypto.X509Certificate;
  rootKeyId: string;
  rootVersion: number;
}

function inputError(message: string, cause?: unknown): EcluseError {
  return new EcluseError('E_INPUT', message, { check: checkId('trust-anchors') }, { cause });
}

function readBounded(file: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw inputError(`cannot read ${file}: ${(e as Error).message}`, e);
  }
  if (bytes.length > MAX_TRUST_FILE_BYTES) throw inputError(`${file} is larger than ${MAX_TRUST_FILE_BYTES} bytes`);
  return bytes;
}

/** Loads and checks the trust anchors in `trustDir` (E_INPUT on anything wrong). */
export function loadTrustAnchors(trustDir: string): TrustAnchors {
  const trustPath = path.join(trustDir, TRUST_FILE);
  const rootPath = path.join(trustDir, ROOT_CERT_FILE);
  let raw: unknown;
  try {
    raw = parseBoundedJson(readBounded(trustPath), trustPath, MAX_TRUST_FILE_BYTES);
  } catch (e) {
    if (e instanceof EcluseError && e.code === 'E_INPUT') throw e;
    throw inputError(`${trustPath} is not valid JSON`, e);
  }
  const parsed = trustFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw inputError(
      `${trustPath} is malformed: ${issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : ''}`,
    );
  }
  let root: crypto.X509Certificate;
  try {
    root = new crypto.X509Certificate(readBounded(rootPath));
  } catch (e) {
    if (e instanceof EcluseError) throw e;
    throw inputError(`${rootPath} is not an X.509 certificate`, e);
  }
  if (!root.ca) throw inputError(`${rootPath} is not a CA certificate`);
  if (!root.checkIssued(root) || !root.verify(root.publicKey)) throw inputError(`${rootPath} is not self-signed`);
  let canSign = false;
  try {
    canSign = readCertificateFields(root.raw).keyUsage?.keyCertSign === true;
  } catch (e) {
    throw inputError(`${rootPath} could not be read: ${(e as Error).message}`, e);
  }
  if (!canSign) throw inputError(`${rootPath} may not sign certificates (keyUsage keyCertSign is missing)`);
  const rootKeyId = keyIdOf(root.publicKey);
  if (rootKeyId !== parsed.data.rootKeyId) {
    throw inputError(`${rootPath} has key id ${rootKeyId}, but ${trustPath} pins ${parsed.data.rootKeyId}`);
  }
  return { root, rootKeyId, rootVersion: parsed.data.rootVersion };
}

function writePublic(file: string, bytes: Buffer): void {
  fs.writeFileSync(file, bytes, { mode: 0o644 });
  fs.chmodSync(file, 0o644);
}

/**
 * Validates the anchors in `fromDir` and installs them into `toDir` (created 0755; files 0644). Installing the same
 * anchors again is a no-op; replacing different anchors already installed is refused (E_ALREADY_INITIALIZED): the
 * root changes only by rotation.
 */
export function installTrust(fromDir: string, toDir: string): TrustAnchors {
  const anchors = loadTrustAnchors(fromDir);
  const files = [TRUST_FILE, ROOT_CERT_FILE].map((name) => ({
    name,
    bytes: readBounded(path.join(fromDir, name)),
    target: path.join(toDir, name),
  }));
  const existing = files.filter((f) => fs.existsSync(f.target));
  if (existing.some((f) => !fs.readFileSync(f.target).equals(f.bytes))) {
    throw new EcluseError('E_ALREADY_INITIALIZED', `${toDir} already holds different trust anchors`, {
      check: checkId('trust-anchors'),
    });
  }
  fs.mkdirSync(toDir, { recursive: true, mode: 0o755 });
  fs.chmodSync(toDir, 0o755);
  // root.pem first: trust.json, which pins it, lands last.
  for (const f of [...files].reverse()) writePublic(f.target, f.bytes);
  loadTrustAnchors(toDir);
  return anchors;
}
