/**
 * Vendor signatures in cosign's format, made with the project's own signing code (keys/signer.ts `localSigner`, the
 * same Sigstore `Signer` the export station signs with, under @sigstore/sign's MessageSignatureBundleBuilder): Debian's
 * skopeo cannot sign (its sigstore support is disabled) and cosign is not packaged.
 *
 * - the payload is cosign's simple-signing JSON naming the manifest digest (`critical.image.docker-manifest-digest`);
 * - the signature is ECDSA P-256 over the payload's SHA-256 (what `cosign sign --key` makes);
 * - in the registry it is an OCI manifest under the tag `sha256-<hex>.sig` whose one layer is the payload
 *   (`application/vnd.dev.cosign.simplesigning.v1+json`) annotated `dev.cosignproject.cosign/signature` = base64
 *   signature; pushed with `skopeo copy --preserve-digests` from an OCI layout made here;
 * - the Sigstore bundle (message signature over the payload) is what the `cosign` vendor evidence carries.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { bundleToJSON } from '@sigstore/bundle';
import { MessageSignatureBundleBuilder } from '@sigstore/sign';
import { keyIdOf } from '../../../keys/keyid.js';
import { localSigner } from '../../../keys/signer.js';
import { OCI_MANIFEST, putBlob, tagInLayout, type Descriptor } from './image.js';
import type { Registry } from './registry.js';
import { tool } from './tools.js';

export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

export interface CosignSignature {
  /** The simple-signing JSON, as signed. */
  payload: Buffer;
  /** DER ECDSA signature over the payload (base64 in the registry annotation). */
  signature: Buffer;
  /** A Sigstore bundle (JSON text) with the message signature over the payload and the vendor's public key. */
  bundle: string;
  /** The digest the payload names. */
  digest: string;
}

export interface CosignVendor {
  /** The vendor's public key (PEM SPKI): what the operator pins. */
  publicKeyPem: string;
  keyId: string;
  /** Signs `digest` (sha256:<hex>) for the image `dockerReference` (host/repo, as cosign writes it). */
  sign(digest: string, dockerReference: string): Promise<CosignSignature>;
}

export function simpleSigningPayload(digest: string, dockerReference: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': dockerReference },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature',
      },
      optional: null,
    }),
  );
}

/** A vendor with a fresh ECDSA P-256 key (cosign's default key type). */
export function makeCosignVendor(): CosignVendor {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const keyId = keyIdOf(publicKey);
  const signer = localSigner(privateKey, publicKeyPem, keyId);
  return {
    publicKeyPem,
    keyId,
    async sign(digest, dockerReference) {
      const payload = simpleSigningPayload(digest, dockerReference);
      const b = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({ data: payload });
      if (b.content.$case !== 'messageSignature') throw new Error('not a message signature bundle');
      return {
        payload,
        signature: Buffer.from(b.content.messageSignature.signature),
        bundle: JSON.stringify(bundleToJSON(b)),
        digest,
      };
    },
  };
}

/** The cosign tag for a manifest digest: `sha256-<hex>.sig`. */
export function cosignTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** Writes the signature manifest (config + payload layer) into a fresh OCI layout `dir`, tagged `sig`. */
export function signatureLayout(dir: string, sig: CosignSignature): { layout: string; manifest: Descriptor } {
  const layout = path.join(dir, 'layout');
  fs.mkdirSync(path.join(layout, 'blobs', 'sha256'), { recursive: true });
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(path.join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [] }));
  const layer = putBlob(layout, SIMPLE_SIGNING, sig.payload);
  const diffId = `sha256:${crypto.createHash('sha256').update(sig.payload).digest('hex')}`;
  const config = putBlob(
    layout,
    'application/vnd.oci.image.config.v1+json',
    Buffer.from(
      JSON.stringify({
        architecture: '',
        config: {},
        created: '0001-01-01T00:00:00Z',
        history: [{ created: '0001-01-01T00:00:00Z' }],
        os: '',
        rootfs: { type: 'layers', diff_ids: [diffId] },
      }),
    ),
  );
  const manifest = putBlob(
    layout,
    OCI_MANIFEST,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config,
        layers: [{ ...layer, annotations: { [SIGNATURE_ANNOTATION]: sig.signature.toString('base64') } }],
      }),
    ),
  );
  tagInLayout(layout, 'sig', manifest);
  return { layout, manifest };
}

/** Pushes the signature under `REPO:sha256-<hex>.sig` as cosign does (skopeo, digests preserved). */
export async function pushCosignSignature(
  dir: string,
  sig: CosignSignature,
  registry: Registry,
  repository: string,
): Promise<Descriptor> {
  const { layout, manifest } = signatureLayout(dir, sig);
  await tool('skopeo', [
    'copy',
    '--quiet',
    '--preserve-digests',
    '--dest-authfile',
    registry.authFile,
    '--dest-tls-verify=false',
    `oci:${layout}:sig`,
    `docker://${registry.host}/${repository}:${cosignTag(sig.digest)}`,
  ]);
  return manifest;
}
