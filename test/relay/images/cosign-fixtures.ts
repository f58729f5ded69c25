/**
 * Cosign-format vendor signatures made with the project's own signing code (keys/signer.ts `localSigner` under
 * @sigstore/sign's MessageSignatureBundleBuilder): Debian's skopeo cannot sign. Written as cosign does, as the
 * `sha256-<hex>.sig` tag of an OCI layout (a manifest whose layer is the simple-signing payload, annotated with the
 * base64 signature), or as the `--vendor-signature` file.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { bundleToJSON } from '@sigstore/bundle';
import { MessageSignatureBundleBuilder } from '@sigstore/sign';
import { keyIdOf } from '../../../keys/keyid.js';
import { localSigner } from '../../../keys/signer.js';
import { OCI_MANIFEST } from '../../../sneakernet/oci/media-types.js';
import { digestOf } from '../../sneakernet/oci/image-fixtures.js';
import { simpleSigningPayload } from '../../helpers/oci/cosign.js';

export interface Vendor {
  publicKeyPem: string;
  keyId: string;
  sign(digest: string): Promise<{ payload: Buffer; signature: Buffer; bundle: Record<string, unknown> }>;
}

export function makeVendor(): Vendor {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const keyId = keyIdOf(publicKey);
  const signer = localSigner(privateKey, publicKeyPem, keyId);
  return {
    publicKeyPem,
    keyId,
    async sign(digest) {
      const payload = simpleSigningPayload(digest, 'vendor.example/acme/app');
      const b = await new MessageSignatureBundleBuilder({ signer, witnesses: [] }).create({ data: payload });
      if (b.content.$case !== 'messageSignature') throw new Error('not a message signature');
      return {
        payload,
        signature: Buffer.from(b.content.messageSignature.signature),
        bundle: bundleToJSON(b) as unknown as Record<string, unknown>,
      };
    },
  };
}

/** Writes the signature of `digest` into the OCI layout `dir` under cosign's tag `sha256-<hex>.sig`. */
export function writeSignatureTag(dir: string, digest: string, sig: { payload: Buffer; signature: Buffer }): void {
  const put = (b: Buffer) => {
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', digestOf(b).slice(7)), b);
    return { digest: digestOf(b), size: b.length };
  };
  const layer = put(sig.payload);
  const config = put(
    Buffer.from(JSON.stringify({ architecture: '', os: '', rootfs: { type: 'layers', diff_ids: [layer.digest] } })),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [
        {
          mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json',
          ...layer,
          annotations: { 'dev.cosignproject.cosign/signature': sig.signature.toString('base64') },
        },
      ],
    }),
  );
  const m = put(manifest);
  const indexFile = path.join(dir, 'index.json');
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { manifests: unknown[] };
  index.manifests.push({
    mediaType: OCI_MANIFEST,
    ...m,
    annotations: { 'org.opencontainers.image.ref.name': `${digest.replace(':', '-')}.sig` },
  });
  fs.writeFileSync(indexFile, JSON.stringify(index));
}
