/**
 * Fixtures for the glance feed tests: vendor image-signing keys with X.509 certificates (RSA by node-forge as the
 * station's own signing certificate is made, ECDSA P-384 by `openssl req`), images published into a real Glance v2
 * server through its write API (POST /v2/images, PUT .../file) with img_signature* properties computed here, and a
 * loopback proxy in front of that server that can demand a token, cut a download, flip a byte or rewrite records.
 */
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { issueImageSigningCertificate } from '../../verifier/image-signature.js';

export interface CertSigner {
  uuid: string;
  certPem: string;
  key: crypto.KeyObject;
  keyType: 'RSA-PSS' | 'ECC_SECP384R1';
  hashMethod: 'SHA-256' | 'SHA-384';
  /** The four img_signature* properties for `data`. */
  sign(data: Buffer): Record<string, string>;
}

/** An RSA-3072 vendor key and its self-signed certificate; `now` moves its validity (for an expired one). */
export function rsaSigner(cn = 'vendor', now = new Date()): CertSigner {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 3072 });
  const certPem = issueImageSigningCertificate(privateKey, cn, now);
  return signerOf(privateKey, certPem, 'RSA-PSS', 'SHA-256');
}

/** An ECDSA P-384 vendor key and its self-signed certificate (openssl). */
export function ecSigner(cn = 'vendor-ec'): CertSigner {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-ec-'));
  try {
    const keyFile = path.join(dir, 'key.pem');
    fs.writeFileSync(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const certPem = execFileSync(
      'openssl',
      ['req', '-x509', '-new', '-key', keyFile, '-subj', `/CN=${cn}`, '-days', '30', '-sha384'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    ).toString();
    return signerOf(privateKey, certPem, 'ECC_SECP384R1', 'SHA-384');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function signerOf(
  key: crypto.KeyObject,
  certPem: string,
  keyType: CertSigner['keyType'],
  hashMethod: CertSigner['hashMethod'],
): CertSigner {
  const uuid = crypto.randomUUID();
  const hash = hashMethod === 'SHA-256' ? 'sha256' : 'sha384';
  return {
    uuid,
    certPem,
    key,
    keyType,
    hashMethod,
    sign(data) {
      const signature =
        keyType === 'RSA-PSS'
          ? crypto.sign(hash, data, {
              key,
              padding: crypto.constants.RSA_PKCS1_PSS_PADDING,
              saltLength: crypto.constants.RSA_PSS_SALTLEN_MAX_SIGN,
            })
          : crypto.sign(hash, data, key);
      return {
        img_signature: signature.toString('base64'),
        img_signature_hash_method: hashMethod,
        img_signature_key_type: keyType,
        img_signature_certificate_uuid: uuid,
      };
    },
  };
}

export interface PublishSpec {
  name: string;
  data?: Buffer | null;
  tags?: string[];
  properties?: Record<string, string>;
  diskFormat?: string;
}

/** Creates an image through the Glance v2 API and uploads its data (unless `data` is null: it stays queued). */
export async function publish(url: string, spec: PublishSpec, token?: string): Promise<string> {
  const auth: Record<string, string> = token ? { 'X-Auth-Token': token } : {};
  const res = await fetch(`${url}/v2/images`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...auth },
    body: JSON.stringify({
      name: spec.name,
      disk_format: spec.diskFormat ?? 'raw',
      container_format: 'bare',
      tags: spec.tags ?? [],
      ...spec.properties,
    }),
  });
  if (res.status !== 201) throw new Error(`POST /v2/images: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  if (spec.data !== null) {
    const up = await fetch(`${url}/v2/images/${id}/file`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', ...auth },
      body: spec.data ?? crypto.randomBytes(50_000),
    });
    if (up.status !== 204) throw new Error(`PUT /v2/images/${id}/file: ${up.status} ${await up.text()}`);
  }
  return id;
}

/** Adds properties to an image (JSON patch), as a Glance without a key manager needs for signatures. */
export async function addProperties(url: string, id: string, props: Record<string, string>): Promise<void> {
  const res = await fetch(`${url}/v2/images/${id}`, {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' },
    body: JSON.stringify(Object.entries(props).map(([k, v]) => ({ op: 'add', path: `/${k}`, value: v }))),
  });
  if (res.status !== 200) throw new Error(`PATCH /v2/images/${id}: ${res.status} ${await res.text()}`);
}

export interface ProxyBehaviour {
  /** Answer 401 unless X-Auth-Token is this. */
  token?: string;
  /** Cut the next image download after this many bytes. */
  cutNextFile?: number;
  /** Flip the first byte of every image download. */
  flipFileByte?: boolean;
  /** Rewrite each image record of the list (and of GET /v2/images/{id}). */
  editImage?: (image: Record<string, unknown>) => void;
}

export interface GlanceProxy {
  url: string;
  behaviour: ProxyBehaviour;
  log: Array<{ method: string; path: string; query: string; range: string | undefined; status: number }>;
  close(): Promise<void>;
}

/** A loopback proxy to `target` (a Glance), doing what `behaviour` says. */
export async function startGlanceProxy(target: string): Promise<GlanceProxy> {
  const behaviour: ProxyBehaviour = {};
  const log: GlanceProxy['log'] = [];
  const server = http.createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? '/', 'http://proxy');
      const entry = {
        method: req.method ?? 'GET',
        path: u.pathname,
        query: u.search,
        range: req.headers.range,
        status: 0,
      };
      log.push(entry);
      if (behaviour.token !== undefined && req.headers['x-auth-token'] !== behaviour.token) {
        entry.status = 401;
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"message":"unauthorized"}');
        return;
      }
      const upstream = await fetch(`${target}${u.pathname}${u.search}`, {
        method: req.method,
        headers: req.headers.range ? { range: req.headers.range } : {},
      });
      entry.status = upstream.status;
      const isFile = u.pathname.endsWith('/file');
      const headers: Record<string, string> = {};
      for (const h of ['content-type', 'content-length', 'content-range', 'content-md5']) {
        const v = upstream.headers.get(h);
        if (v !== null) headers[h] = v;
      }
      if (!isFile) {
        let text = await upstream.text();
        if (behaviour.editImage && upstream.ok) {
          const body = JSON.parse(text) as { images?: Array<Record<string, unknown>> } & Record<string, unknown>;
          if (body.images) body.images.forEach((i) => behaviour.editImage?.(i));
          else behaviour.editImage(body);
          text = JSON.stringify(body);
          headers['content-length'] = String(Buffer.byteLength(text));
        }
        res.writeHead(upstream.status, headers).end(text);
        return;
      }
      res.writeHead(upstream.status, headers);
      const cut = behaviour.cutNextFile;
      behaviour.cutNextFile = undefined;
      let sent = 0;
      let first = true;
      for await (const c of (upstream.body ?? []) as AsyncIterable<Uint8Array>) {
        let chunk = Buffer.from(c);
        if (first && behaviour.flipFileByte && chunk.length > 0) {
          chunk = Buffer.from(chunk);
          chunk[0] = (chunk[0] as number) ^ 0xff;
        }
        first = false;
        if (cut !== undefined && sent + chunk.length >= cut) {
          // Close only once the bytes before the cut were handed to the kernel, so the client receives them.
          res.write(chunk.subarray(0, cut - sent), () => setTimeout(() => res.destroy(), 20));
          return;
        }
        sent += chunk.length;
        res.write(chunk);
      }
      res.end();
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    behaviour,
    log,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `ecluse relay feed add NAME --kind glance` for the vendor "vendorix" (versions from the `version` property). */
export function glanceFeedAddArgs(name: string, product: string, args: string[]): string[] {
  return [
    ...['relay', 'feed', 'add', name, '--kind', 'glance', '--vendor', 'vendorix', '--product', product],
    ...['--version-property', 'version', ...args, '--json'],
  ];
}
