/**
 * Certificates minted by an independent tool, the `openssl` CLI (as RAUC's test/openssl-ca-create.sh does), so that
 * the signer-certificate rules (docs/FORMAT.md 3.3) are tested against certificates our own ceremony would never
 * issue: a missing extension, a CA flag, a wrong role, a short key, a chain through an intermediate.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** A CA openssl can sign with: its certificate and private key files (the key plain or under `passphrase`). */
export interface OpensslCa {
  cert: string;
  key: string;
  passphrase?: string;
}

/** The extensions of a minted certificate, as openssl config lines (`keyUsage = critical, digitalSignature`). */
export type Extensions = string[];

/** What our ceremony puts on a signer certificate (FORMAT.md 3.3): each bad certificate leaves one thing out. */
export const SIGNER_EXTENSIONS: Extensions = [
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = codeSigning',
  'subjectKeyIdentifier = hash',
];

export const CA_EXTENSIONS: Extensions = [
  'basicConstraints = critical, CA:TRUE',
  'keyUsage = critical, keyCertSign, cRLSign',
  'subjectKeyIdentifier = hash',
];

function openssl(dir: string, args: string[], env: NodeJS.ProcessEnv = {}): string {
  return execFileSync('openssl', args, { cwd: dir, env: { ...process.env, ...env }, stdio: 'pipe' }).toString();
}

/** A new RSA key of `bits` bits made by `openssl genpkey`, written (plain PKCS#8) to `<dir>/<name>.key`. */
export function opensslRsaKey(dir: string, name: string, bits: number): { file: string; key: crypto.KeyObject } {
  const file = path.join(dir, `${name}.key`);
  openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${bits}`, '-out', file]);
  return { file, key: crypto.createPrivateKey(fs.readFileSync(file)) };
}

/** openssl's GeneralizedTime spelling of a date: `YYYYMMDDHHMMSSZ`. */
function opensslTime(d: Date): string {
  return `${d.toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`;
}

/**
 * A certificate for `keyFile` with `subject` (`/CN=eve/OU=signer/O=ecluse`, order kept), issued by `ca` with
 * `openssl ca` and the given extensions, valid from `notBefore` (default an hour ago) to `notAfter` (default in 30
 * days): any period, past or future, as RAUC's script makes its expired and not-yet-valid signers. Returns the PEM.
 */
export function opensslIssue(
  dir: string,
  name: string,
  o: { keyFile: string; subject: string; ca: OpensslCa; extensions: Extensions; notBefore?: Date; notAfter?: Date },
): string {
  const work = fs.mkdtempSync(path.join(dir, `${name}-`));
  const csr = path.join(work, 'req.csr');
  const cnf = path.join(work, 'ca.cnf');
  const out = path.join(dir, `${name}.pem`);
  fs.writeFileSync(path.join(work, 'index.txt'), '');
  fs.writeFileSync(
    path.join(work, 'serial'),
    `${crypto
      .randomBytes(16)
      .toString('hex')
      .replace(/^[89a-f]/, '1')}\n`,
  );
  fs.writeFileSync(
    cnf,
    [
      '[ca]',
      'default_ca = ca_here',
      '[ca_here]',
      `database = ${path.join(work, 'index.txt')}`,
      `serial = ${path.join(work, 'serial')}`,
      `new_certs_dir = ${work}`,
      'default_md = sha256',
      'policy = anything',
      'unique_subject = no',
      'copy_extensions = none',
      '[anything]',
      'commonName = optional',
      'organizationalUnitName = optional',
      'organizationName = optional',
      '[v3]',
      ...o.extensions,
      '',
    ].join('\n'),
  );
  openssl(dir, ['req', '-new', '-key', o.keyFile, '-subj', o.subject, '-out', csr]);
  const notBefore = o.notBefore ?? new Date(Date.now() - 3600_000);
  const notAfter = o.notAfter ?? new Date(Date.now() + 30 * 86_400_000);
  const pass = o.ca.passphrase === undefined ? [] : ['-passin', 'env:CA_PASSPHRASE'];
  openssl(
    dir,
    [
      'ca',
      '-batch',
      '-notext',
      '-preserveDN',
      '-config',
      cnf,
      '-cert',
      o.ca.cert,
      '-keyfile',
      o.ca.key,
      ...pass,
      '-startdate',
      opensslTime(notBefore),
      '-enddate',
      opensslTime(notAfter),
      '-extensions',
      'v3',
      '-in',
      csr,
      '-out',
      out,
    ],
    o.ca.passphrase === undefined ? {} : { CA_PASSPHRASE: o.ca.passphrase },
  );
  return fs.readFileSync(out, 'utf8');
}

/** What `openssl x509 -text` says about a certificate (to show the fixture is what its test claims). */
export function opensslText(dir: string, pem: string): string {
  const file = path.join(dir, `text-${crypto.randomBytes(4).toString('hex')}.pem`);
  fs.writeFileSync(file, pem);
  return openssl(dir, ['x509', '-in', file, '-noout', '-text']);
}
