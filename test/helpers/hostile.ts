/**
 * The hostile-bundle generator: a fixture site in the spirit of RAUC's `openssl-ca-create.sh`, made with the real key
 * ceremony (keys/ceremony.ts, keys/issue.ts) and the real CLI (`ecluse keys revoke`), and helpers that take a good
 * bundle written by `ecluse export` and make it wrong in one precise way: re-sign a modified statement with chosen keys
 * (DSSE through loadSigner(...).signStatement, exactly as the export station does), swap signature and certificate
 * files, rewrite tar headers, and run the CLI under a fake clock (Debian's libfaketime).
 *
 * The site (all issued 30 days ago, so that exports under a clock wound back a few days still find valid keys):
 *
 *   alice, bob   valid signers of the site root
 *   carol        a signer revoked with `ecluse keys revoke` (every later export carries the revocation list)
 *   old          a signer whose certificate expired (issued 10 days ago for one day)
 *   stranger     a key with a valid certificate from the site root that is never put on the media
 *   root         the site root key itself, loaded as a signer (its certificate is a CA certificate)
 *   mallory      a signer of another site's root (foreign)
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto, { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { addSigner, initKeys, CERT_FILE, KEY_FILE, SIGNER_FILE } from '../../keys/ceremony.js';
import { generateKey, issueSignerCertificate } from '../../keys/issue.js';
import { writePrivateKey } from '../../keys/keyfile.js';
import { loadSigner, type LoadedSigner } from '../../keys/signer.js';
import { CERTIFICATE_SUFFIX, SIGNATURE_SUFFIX } from '../../sneakernet/layout.js';
import { ecluse, ecluseOk, PASSPHRASE, sha256, type BundleOnMedia, type Keys, type World } from './world.js';

const DAY_MS = 86_400_000;
export const BLOCK = 512;

// ---------------------------------------------------------------------------------------------------------------
// The fixture site

export interface HostileSite {
  dir: string;
  /** The site's KEYDIR, in the shape `world({ keys })` takes (alice, bob, carol and old have signer folders). */
  keys: Keys;
  /** Another site's KEYDIR (signer mallory). */
  foreignKeys: Keys;
  alice: LoadedSigner;
  bob: LoadedSigner;
  /** Revoked by `ecluse keys revoke carol` (the list is in keys/trust/ and travels with every export). */
  revoked: LoadedSigner;
  /** Certificate valid for one day, ten days ago; loaded at a time it was valid. */
  expired: LoadedSigner;
  /** Certificate issued by the site root, never written to the media. */
  stranger: LoadedSigner;
  /** The root CA key and certificate, loaded as if they were a signer. */
  root: LoadedSigner;
  /** mallory, of the foreign root. */
  foreign: LoadedSigner;
  /** When the site (root, alice, bob, carol) was issued. */
  issuedAt: Date;
  /** When the expired signer's certificate stopped being valid. */
  expiredOn: Date;
  cleanup(): void;
}

const pass = () => Promise.resolve(PASSPHRASE);

function keysAt(dir: string): Keys {
  return { dir, trust: path.join(dir, 'trust'), signer: (name) => path.join(dir, 'signers', name) };
}

/** A signer folder (key.pem, cert.pem, signer.json) for a fresh key, with a certificate issued by `keyDir`'s root. */
async function issueExtraSigner(keyDir: string, name: string, now: Date): Promise<string> {
  const rootKey = crypto.createPrivateKey({
    key: fs.readFileSync(path.join(keyDir, 'root', KEY_FILE), 'utf8'),
    passphrase: PASSPHRASE,
  });
  const rootCertPem = fs.readFileSync(path.join(keyDir, 'root', CERT_FILE), 'utf8');
  const signerKey = await generateKey();
  const dir = path.join(keyDir, 'extra', name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  writePrivateKey(path.join(dir, KEY_FILE), signerKey, PASSPHRASE);
  fs.writeFileSync(
    path.join(dir, CERT_FILE),
    issueSignerCertificate({ rootKey, rootCertPem, signerKey, name, now, days: 365 }),
  );
  fs.writeFileSync(path.join(dir, SIGNER_FILE), JSON.stringify({ name }));
  return dir;
}

/** The root key and certificate in a signer-shaped folder (loadSigner accepts any key whose certificate matches). */
function rootAsSignerDir(keyDir: string): string {
  const dir = path.join(keyDir, 'extra', 'root');
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  fs.cpSync(path.join(keyDir, 'root'), dir, { recursive: true });
  fs.writeFileSync(path.join(dir, SIGNER_FILE), JSON.stringify({ name: 'root' }));
  return dir;
}

/**
 * Makes the fixture site under `dir` (about two seconds: eight RSA-3072 keys, made in parallel where they can be).
 * Private keys are encrypted under the e2e PASSPHRASE, which `ecluse` (world.ts) passes as ECLUSE_PASSPHRASE.
 */
export async function hostileSite(dir: string): Promise<HostileSite> {
  const now = Date.now();
  const issuedAt = new Date(now - 30 * DAY_MS);
  const expiredFrom = new Date(now - 10 * DAY_MS);
  const siteDir = path.join(dir, 'site');
  const foreignDir = path.join(dir, 'foreign');
  await Promise.all([
    initKeys({ out: siteDir, signers: ['alice', 'bob', 'carol'], passphrase: PASSPHRASE, now: issuedAt }),
    initKeys({
      out: foreignDir,
      signers: ['mallory'],
      passphrase: PASSPHRASE,
      now: issuedAt,
      siteName: 'foreign',
    }),
  ]);
  const [oldRecord, strangerDir] = await Promise.all([
    addSigner({ keyDir: siteDir, name: 'old', passphrase: PASSPHRASE, validityDays: 1, now: expiredFrom }),
    issueExtraSigner(siteDir, 'stranger', issuedAt),
  ]);
  // Through the CLI, like an operator: the root signs a revocation list into KEYDIR/trust/.
  await ecluseOk(['keys', 'revoke', 'carol', '--keys', siteDir, '--reason', 'hostile fixture: key stolen', '--json']);
  const keys = keysAt(siteDir);
  const [alice, bob, revoked, expired, stranger, root, foreign] = await Promise.all([
    loadSigner(keys.signer('alice'), pass),
    loadSigner(keys.signer('bob'), pass),
    loadSigner(keys.signer('carol'), pass),
    loadSigner(keys.signer('old'), pass, { now: new Date(expiredFrom.getTime() + 3600_000) }),
    loadSigner(strangerDir, pass),
    loadSigner(rootAsSignerDir(siteDir), pass),
    loadSigner(keysAt(foreignDir).signer('mallory'), pass),
  ]);
  return {
    dir,
    keys,
    foreignKeys: keysAt(foreignDir),
    alice,
    bob,
    revoked,
    expired,
    stranger,
    root,
    foreign,
    issuedAt,
    expiredOn: new Date(oldRecord.notAfter),
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Signatures and certificates in a bundle folder

export function certificatesDir(bundle: BundleOnMedia): string {
  return path.join(bundle.root, 'certificates');
}

export interface SignatureOnMedia {
  name: string;
  bytes: Buffer;
}

/** The signature files of a bundle, sorted by name. */
export function signatureFiles(bundle: BundleOnMedia): SignatureOnMedia[] {
  return fs
    .readdirSync(bundle.signaturesDir)
    .sort()
    .map((name) => ({ name, bytes: fs.readFileSync(path.join(bundle.signaturesDir, name)) }));
}

interface SigstoreJson {
  verificationMaterial: { publicKey: { hint: string } };
  dsseEnvelope: { payload: string; payloadType: string; signatures: Array<{ sig: string; keyid: string }> };
}

export function parseSignature(bytes: Buffer): SigstoreJson {
  return JSON.parse(bytes.toString('utf8')) as SigstoreJson;
}

/** The signed statement bytes (the DSSE payload of the first signature file). */
export function statementBytes(bundle: BundleOnMedia): Buffer {
  const first = signatureFiles(bundle)[0];
  if (!first) throw new Error(`${bundle.root} has no signature file`);
  return Buffer.from(parseSignature(first.bytes).dsseEnvelope.payload, 'base64');
}

export function statementOf(bundle: BundleOnMedia): Record<string, unknown> {
  return JSON.parse(statementBytes(bundle).toString('utf8')) as Record<string, unknown>;
}

/** A signature file by `signer` over `payload`, named as the format requires (`<key-id>.sigstore.json`). */
export async function signatureBy(signer: LoadedSigner, payload: Buffer): Promise<SignatureOnMedia> {
  return { name: `${signer.keyId}${SIGNATURE_SUFFIX}`, bytes: Buffer.from(await signer.signStatement(payload)) };
}

/** Removes every signature and certificate file of the bundle. */
export function clearSignatures(bundle: BundleOnMedia): void {
  for (const dir of [bundle.signaturesDir, certificatesDir(bundle)]) {
    for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name));
  }
}

export function writeSignature(bundle: BundleOnMedia, sig: SignatureOnMedia, name = sig.name): string {
  const file = path.join(bundle.signaturesDir, name);
  fs.writeFileSync(file, sig.bytes);
  return file;
}

/** Writes `certificates/<key-id>.pem` (the signer's own certificate unless `pem` is given). */
export function writeCertificate(bundle: BundleOnMedia, signer: LoadedSigner, pem = signer.certificatePem): string {
  const file = path.join(certificatesDir(bundle), `${signer.keyId}${CERTIFICATE_SUFFIX}`);
  fs.writeFileSync(file, pem);
  return file;
}

/**
 * Replaces the bundle's signatures by signatures of `signers` over `payload` (default: the statement as it is),
 * each with its certificate unless `certificates` is false.
 */
export async function resign(
  bundle: BundleOnMedia,
  signers: LoadedSigner[],
  o: { payload?: Buffer; certificates?: boolean } = {},
): Promise<void> {
  const payload = o.payload ?? statementBytes(bundle);
  const sigs = await Promise.all(signers.map((s) => signatureBy(s, payload)));
  clearSignatures(bundle);
  signers.forEach((s, i) => {
    writeSignature(bundle, sigs[i] as SignatureOnMedia);
    if (o.certificates !== false) writeCertificate(bundle, s);
  });
}

/** Edits the statement (parsed), serialises it compactly and re-signs it with `signers`: a validly signed edit. */
export async function editAndResign(
  bundle: BundleOnMedia,
  signers: LoadedSigner[],
  edit: (statement: Record<string, unknown>) => void,
): Promise<Buffer> {
  const statement = statementOf(bundle);
  edit(statement);
  const payload = Buffer.from(JSON.stringify(statement), 'utf8');
  await resign(bundle, signers, { payload });
  return payload;
}

/** Rewrites a signature file's JSON in place (or to another name). */
export function editSignatureJson(file: string, change: (json: SigstoreJson) => void, to = file): void {
  const json = parseSignature(fs.readFileSync(file));
  change(json);
  if (to !== file) fs.rmSync(file);
  fs.writeFileSync(to, JSON.stringify(json));
}

// ---------------------------------------------------------------------------------------------------------------
// Volumes

type VolumeJson = { name: string; size: number; sha256: string; entries: Array<{ size: number; path: string }> };

export function volumesOf(statement: Record<string, unknown>): VolumeJson[] {
  return (statement.predicate as { volumes: VolumeJson[] }).volumes;
}

/** Sets a volume's size and sha256 in the statement to those of the file on the media (to re-sign a changed volume). */
export function describeVolumeAsIs(statement: Record<string, unknown>, bundle: BundleOnMedia, n: number): void {
  const v = volumesOf(statement)[n - 1];
  if (!v) throw new Error(`the statement has no volume ${n}`);
  const bytes = fs.readFileSync(bundle.volume(n));
  v.size = bytes.length;
  v.sha256 = sha256(bytes);
}

/** Recomputes the ustar header checksum of the header block at `at` (as a writer would). */
export function fixTarChecksum(buf: Buffer, at: number): void {
  buf.fill(0x20, at + 148, at + 156);
  let sum = 0;
  for (let i = at; i < at + BLOCK; i++) sum += buf[i] ?? 0;
  buf.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
}

/** Rewrites the size field of the tar header at `at` in `file` (11 octal digits), checksum fixed up. */
export function setTarHeaderSize(file: string, at: number, size: number): void {
  const buf = fs.readFileSync(file);
  buf.write(`${size.toString(8).padStart(11, '0')}\0`, at + 124, 'latin1');
  fixTarChecksum(buf, at);
  fs.writeFileSync(file, buf);
}

export function tarHeaderSize(file: string, at = 0): number {
  const buf = fs.readFileSync(file);
  return parseInt(buf.toString('latin1', at + 124, at + 135), 8);
}

/** A FIFO at `file` (mkfifo(1): Node has no API for it). */
export function mkfifo(file: string): void {
  execFileSync('mkfifo', [file]);
}

/** A random lowercase v4 UUID that is not `not`. */
export function otherBundleId(not: string): string {
  for (;;) {
    const id = randomUUID();
    if (id !== not) return id;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The CLI under another clock

export const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

/** Environment that runs a process at `offset` from the real clock (libfaketime syntax: `-3d`, `+2d`, `-36h`). */
export function fakeTimeEnv(offset: string): Record<string, string> {
  return { LD_PRELOAD: LIBFAKETIME, FAKETIME: offset, FAKETIME_DONT_RESET: '1' };
}

/**
 * Whether Node, run under libfaketime, sees the fake clock: runs `node -e` at `+2d` and `-3d` and checks the dates it
 * prints. Returns null when it does, else why not (the tests that need it are skipped with that reason).
 */
export function fakeTimeProblem(): string | null {
  if (!fs.existsSync(LIBFAKETIME)) {
    return `${LIBFAKETIME} is missing (apt-get install faketime; scripts/install-deps.sh installs it)`;
  }
  for (const [offset, days] of [
    ['+2d', 2],
    ['-3d', -3],
  ] as const) {
    const r = spawnSync(process.execPath, ['-e', 'console.log(Date.now())'], {
      env: { ...process.env, ...fakeTimeEnv(offset) },
      encoding: 'utf8',
      timeout: 20_000,
    });
    const seen = Number(r.stdout.trim());
    const want = Date.now() + days * DAY_MS;
    if (r.status !== 0 || !Number.isFinite(seen) || Math.abs(seen - want) > 60_000) {
      return `node under libfaketime (FAKETIME=${offset}) printed ${JSON.stringify(r.stdout.trim())} (status ${r.status}, ${r.stderr.trim()}), not the fake time`;
    }
  }
  return null;
}

/** The same world, but `importJson` runs the CLI with extra environment (a fake clock) and/or another timeout. */
export function importingWith(w: World, o: { env?: Record<string, string>; timeoutMs?: number }): World {
  return {
    ...w,
    importJson: (media, home) =>
      ecluse(['import', media, '--json'], { home: home ?? w.inside, env: o.env, timeoutMs: o.timeoutMs }),
  };
}
