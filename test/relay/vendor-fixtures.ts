/**
 * Vendor fixtures for feed tests: an HTTP mirror on 127.0.0.1 serving a folder (autoindex, Range, and an optional
 * cut-off or stall to test resumed downloads), OpenPGP keys made with `gpg --batch --quick-gen-key` in a throw-away
 * GNUPGHOME (no network), and Sigstore bundles signed with an ECDSA P-256 key made with Node's crypto.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { bundleToJSON } from '@sigstore/bundle';
import { DSSEBundleBuilder, MessageSignatureBundleBuilder, type Signer } from '@sigstore/sign';

export interface Mirror {
  url: string;
  dir: string;
  /** Requests seen (method, path, range header). */
  log: Array<{ path: string; range: string | undefined; status: number }>;
  /** Cut the next download of `file` after this many bytes (the connection is destroyed). */
  cutNext(file: string, bytes: number): void;
  /** Send `bytes` of the next download of `file`, then nothing more, keeping the connection open. */
  stallNext(file: string, bytes: number): void;
  close(): Promise<void>;
}

export async function startMirror(dir: string): Promise<Mirror> {
  const cuts = new Map<string, number>();
  const stalls = new Map<string, number>();
  const log: Mirror['log'] = [];
  const server = http.createServer((req, res) => {
    const name = decodeURIComponent((req.url ?? '/').split('?')[0] ?? '/').replace(/^\/+/, '');
    const file = path.join(dir, name);
    const range = req.headers.range;
    const done = (status: number) => log.push({ path: name, range, status });
    if (name === '') {
      const links = fs
        .readdirSync(dir)
        .map((n) => `<a href="${encodeURIComponent(n)}">${n}</a>`)
        .join('\n');
      res
        .writeHead(200, { 'content-type': 'text/html' })
        .end(`<html><body><a href="../">../</a>\n${links}</body></html>`);
      return done(200);
    }
    if (name.includes('..') || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      res.writeHead(404).end();
      return done(404);
    }
    const size = fs.statSync(file).size;
    let start = 0;
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m) {
      start = Number(m[1]);
      if (start >= size) {
        res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
        return done(416);
      }
      res.writeHead(206, {
        'content-length': String(size - start),
        'content-range': `bytes ${start}-${size - 1}/${size}`,
        'accept-ranges': 'bytes',
      });
      done(206);
    } else {
      res.writeHead(200, { 'content-length': String(size), 'accept-ranges': 'bytes' });
      done(200);
    }
    const stall = stalls.get(name);
    if (stall !== undefined) {
      stalls.delete(name);
      fs.createReadStream(file, { start, end: start + stall - 1 }).on('data', (c) => res.write(c));
      return; // and never ends: closeAllConnections() at close
    }
    const cut = cuts.get(name);
    if (cut !== undefined) {
      cuts.delete(name);
      const stream = fs.createReadStream(file, { start, end: start + cut - 1 });
      stream.on('data', (c) => res.write(c));
      stream.on('end', () => setTimeout(() => res.destroy(), 20));
      return;
    }
    fs.createReadStream(file, { start }).pipe(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    dir,
    log,
    cutNext: (file, bytes) => cuts.set(file, bytes),
    stallNext: (file, bytes) => stalls.set(file, bytes),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// OpenPGP (gpg, in a temp GNUPGHOME)

export interface PgpVendor {
  home: string;
  /** ASCII-armored public key. */
  publicKey: string;
  fingerprint: string;
  /** Writes `<file>.gpg` (binary detached signature). */
  detachSign(file: string, out?: string): string;
  /** Writes a clear-signed copy of `file` to `out`. */
  clearSign(file: string, out: string): string;
  close(): void;
}

export function makePgpVendor(uid: string): PgpVendor {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-gpg-'));
  fs.chmodSync(home, 0o700);
  const env = { ...process.env, GNUPGHOME: home, LC_ALL: 'C' };
  const gpg = (args: string[]) =>
    execFileSync('gpg', ['--batch', '--yes', '--pinentry-mode', 'loopback', '--passphrase', '', ...args], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  gpg(['--quick-gen-key', uid, 'ed25519', 'sign', 'never']);
  const publicKey = gpg(['--armor', '--export', uid]).toString('utf8');
  const colons = gpg(['--with-colons', '--list-keys', uid]).toString('utf8');
  const fingerprint = /^fpr:::::::::([0-9A-F]+):/m.exec(colons)?.[1] ?? '';
  return {
    home,
    publicKey,
    fingerprint,
    detachSign(file, out = `${file}.gpg`) {
      gpg(['--local-user', uid, '--detach-sign', '--output', out, file]);
      return out;
    },
    clearSign(file, out) {
      gpg(['--local-user', uid, '--clearsign', '--output', out, file]);
      return out;
    },
    close() {
      try {
        execFileSync('gpgconf', ['--kill', 'gpg-agent'], { env });
      } catch {
        /* no agent */
      }
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

export const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
export const sha512 = (b: Buffer) => crypto.createHash('sha512').update(b).digest('hex');

/** A SHA256SUMS text for files in `dir`. */
export function checksumFile(dir: string, files: string[], algorithm: 'sha256' | 'sha512' = 'sha256'): string {
  return files
    .map((f) => {
      const b = fs.readFileSync(path.join(dir, f));
      return `${algorithm === 'sha256' ? sha256(b) : sha512(b)}  ${f}\n`;
    })
    .join('');
}

// ---------------------------------------------------------------------------------------------------------------
// Sigstore (a vendor key, ECDSA P-256)

export interface SigstoreVendor {
  publicKeyPem: string;
  /** A cosign-style bundle (message signature over the bytes) for `data`. */
  signBlob(data: Buffer): Promise<string>;
  /** A DSSE bundle over an in-toto statement naming `data`'s sha256. */
  attestBlob(name: string, data: Buffer): Promise<string>;
}

export function makeSigstoreVendor(): SigstoreVendor {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const signer: Signer = {
    sign: (data: Buffer) =>
      Promise.resolve({
        signature: crypto.sign('sha256', data, privateKey),
        key: { $case: 'publicKey', publicKey: publicKeyPem, hint: '' },
      }),
  };
  return {
    publicKeyPem,
    async signBlob(data) {
      const b = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({ data });
      return JSON.stringify(bundleToJSON(b));
    },
    async attestBlob(name, data) {
      const statement = {
        _type: 'https://in-toto.io/Statement/v1',
        subject: [{ name, digest: { sha256: sha256(data) } }],
        predicateType: 'https://example.com/release/v1',
        predicate: {},
      };
      const b = await new DSSEBundleBuilder({ signer, witnesses: [] }).create({
        data: Buffer.from(JSON.stringify(statement)),
        type: 'application/vnd.in-toto+json',
      });
      return JSON.stringify(bundleToJSON(b));
    },
  };
}
