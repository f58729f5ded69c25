/**
 * The vendor's cosign signature of an image (docs/FORMAT.md 4.5 `cosign`): read from the registry tag
 * `sha256-<hex>.sig` beside the image (cosign's layout: an OCI manifest whose layer is the simple-signing payload,
 * annotated `dev.cosignproject.cosign/signature` = base64 signature), or from a file the operator gives
 * (`--vendor-signature FILE`: `{"payload": base64, "bundle": <Sigstore bundle JSON>}`). Checked against the vendor keys
 * the operator pins (`--vendor-key`), and kept as the image's vendor evidence either way.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash, createPublicKey } from 'node:crypto';
import { z } from 'zod';
import { verifyCosignSignature } from '../../keys/cosign-signature.js';
import { keyIdOf } from '../../keys/keyid.js';
import { EcluseError } from '../../sneakernet/errors.js';
import {
  EVIDENCE_COSIGN_PAYLOAD_BYTES,
  EVIDENCE_SIGNATURE_BYTES,
  type VendorEvidence,
} from '../../sneakernet/evidence.js';
import { parseBoundedJson } from '../../sneakernet/bounded-json.js';
import { signatureSource, type ImageReference } from './reference.js';
import { runSkopeo, sourceOptions, type SkopeoOptions } from './skopeo.js';

export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';

export interface CosignMaterial {
  payload: Buffer;
  bundle: Buffer;
  /** Where it came from, for the operator. */
  from: string;
}

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64');
const signatureManifest = z.object({
  layers: z
    .array(
      z.object({
        mediaType: z.string(),
        digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
        size: z.number().int().nonnegative().max(EVIDENCE_COSIGN_PAYLOAD_BYTES),
        annotations: z.record(z.string(), z.string()).optional(),
      }),
    )
    .min(1)
    .max(16),
});

/** A message-signature Sigstore bundle (public-key hint, no log entries) over `payload`, as cosign's tag carries it. */
function bundleOf(payload: Buffer, signature: Buffer, hint: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: {
        publicKey: { hint },
        tlogEntries: [],
        timestampVerificationData: { rfc3161Timestamps: [] },
      },
      messageSignature: {
        messageDigest: { algorithm: 'SHA2_256', digest: createHash('sha256').update(payload).digest('base64') },
        signature: signature.toString('base64'),
      },
    }),
  );
}

/**
 * Reads cosign's signature tag for `digest` (null when the registry or layout has none). The tag is fetched with
 * skopeo into a private folder under `scratch`, its manifest and payload read within bounds.
 */
export async function readSignatureTag(
  ref: ImageReference,
  digest: string,
  scratch: string,
  o: SkopeoOptions,
): Promise<CosignMaterial | null> {
  const source = signatureSource(ref, digest);
  const dir = await fs.promises.mkdtemp(path.join(scratch, '.signature-'));
  try {
    try {
      await runSkopeo(
        ['copy', '--quiet', '--preserve-digests', ...sourceOptions(ref, o), source, `dir:${dir}`],
        source,
        o,
      );
    } catch (e) {
      if (o.signal?.aborted) throw e;
      // No signature tag: the caller decides whether that is acceptable. Anything else (network, credentials) is said.
      const said = e instanceof EcluseError ? e.message : String(e);
      if (/manifest unknown|not found|no descriptor found|no such file|does not exist/i.test(said)) return null;
      throw e;
    }
    const manifest = signatureManifest.safeParse(
      parseBoundedJson(await readSmall(path.join(dir, 'manifest.json'), 64 * 1024, source), source, 64 * 1024, {
        code: 'E_VENDOR_SIGNATURE',
        check: 'vendor-signature',
      }),
    );
    const layer = manifest.success ? manifest.data.layers.find((l) => l.mediaType === SIMPLE_SIGNING) : undefined;
    const sig = layer?.annotations?.[SIGNATURE_ANNOTATION];
    if (!layer || !sig || !b64.safeParse(sig).success) {
      throw new EcluseError(
        'E_VENDOR_SIGNATURE',
        `${source} is not a cosign signature (no signed simple-signing layer)`,
        {
          check: 'vendor-signature',
        },
      );
    }
    const payload = await readSmall(
      path.join(dir, layer.digest.slice('sha256:'.length)),
      EVIDENCE_COSIGN_PAYLOAD_BYTES,
      source,
    );
    if (`sha256:${createHash('sha256').update(payload).digest('hex')}` !== layer.digest) {
      throw new EcluseError('E_VENDOR_SIGNATURE', `${source}: the payload does not match its digest`, {
        check: 'vendor-signature',
      });
    }
    return { payload, bundle: bundleOf(payload, Buffer.from(sig, 'base64'), ''), from: source };
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

async function readSmall(file: string, max: number, what: string): Promise<Buffer> {
  const st = await fs.promises.stat(file).catch(() => null);
  if (!st?.isFile() || st.size > max) {
    throw new EcluseError('E_VENDOR_SIGNATURE', `${what}: ${path.basename(file)} is missing or over ${max} bytes`, {
      check: 'vendor-signature',
    });
  }
  return fs.promises.readFile(file);
}

const signatureFile = z.strictObject({ payload: b64.min(1), bundle: z.record(z.string(), z.unknown()) });

/** `--vendor-signature FILE`: `{"payload": base64 simple-signing JSON, "bundle": Sigstore bundle}`. */
export async function readSignatureFile(file: string): Promise<CosignMaterial> {
  const bytes = await fs.promises.readFile(file).catch((e: unknown) => {
    throw new EcluseError('E_INPUT', `--vendor-signature ${file} cannot be read: ${(e as Error).message}`);
  });
  const raw = parseBoundedJson(bytes, `--vendor-signature ${file}`, 4 * EVIDENCE_SIGNATURE_BYTES, { code: 'E_INPUT' });
  const p = signatureFile.safeParse(raw);
  if (!p.success) {
    throw new EcluseError(
      'E_INPUT',
      `--vendor-signature ${file} is not {"payload": base64 simple-signing JSON, "bundle": Sigstore bundle}`,
    );
  }
  return {
    payload: Buffer.from(p.data.payload, 'base64'),
    bundle: Buffer.from(JSON.stringify(p.data.bundle)),
    from: file,
  };
}

/** Reads pinned vendor keys (PEM public keys or certificates); E_KEY naming an unusable one. */
export function readVendorKeys(files: string[]): string[] {
  return files.map((f) => {
    try {
      const pem = fs.readFileSync(f, 'utf8');
      keyIdOf(createPublicKey(pem));
      return pem;
    } catch (e) {
      throw new EcluseError(
        'E_KEY',
        `--vendor-key ${f} is not a PEM public key or certificate: ${(e as Error).message}`,
      );
    }
  });
}

export interface CheckedSignature {
  evidence: VendorEvidence;
  /** The pinned key that verified it, or null when no key was pinned (kept unverified: re-checked inside). */
  keyId: string | null;
  from: string;
}

/** Verifies the material against the pinned keys (when any) and turns it into the `cosign` evidence. */
export function checkSignature(m: CosignMaterial, keys: string[], digest: string, what: string): CheckedSignature {
  let keyId: string | null = null;
  let bundle = m.bundle;
  if (keys.length > 0) {
    keyId = verifyCosignSignature({ payload: m.payload, bundle: m.bundle, keys, digest, what }).keyId;
    // A bundle made from the registry tag names no key: name the one that verified it.
    const j = JSON.parse(bundle.toString('utf8')) as { verificationMaterial?: { publicKey?: { hint?: string } } };
    if (j.verificationMaterial?.publicKey && !j.verificationMaterial.publicKey.hint) {
      j.verificationMaterial.publicKey.hint = keyId;
      bundle = Buffer.from(JSON.stringify(j));
    }
  }
  return {
    evidence: { kind: 'cosign', payload: m.payload.toString('base64'), bundle: bundle.toString('base64') },
    keyId,
    from: m.from,
  };
}
