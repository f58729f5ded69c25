/**
 * `ecluse inspect`: what is on the media, trusting nothing. Reads each bundle's signature files and decodes the
 * statement they carry WITHOUT verifying it, so everything reported is what the media claims. Useful before an
 * import, to see which bundle a stick holds, which volumes are missing, and who claims to have signed it.
 */
import { transferSize } from './delta.js';
import { X509Certificate } from 'node:crypto';
import { findBundles, readBundleFiles } from './bundle-files.js';
import { EcluseError } from './errors.js';
import { LIMITS } from './limits.js';
import { platformKey } from './oci/platform.js';
import { parseBoundedJson, parseStatement, type Statement } from './statement.js';
import { subjectName } from './subject.js';

export interface InspectedBundle {
  id: string;
  verified: false;
  signatures: Array<{ keyId: string; claimedSigner: string | null; certificateValidUntil: string | null }>;
  claimed: {
    station: string;
    sequence: number;
    site: string;
    created: string;
    expires: string;
    artifacts: Array<{
      name: string;
      version: string;
      size: number;
      /** Additions: `oci-image` (4.9), `ecluse-package` (4.10). */
      type: 'vm-image' | 'oci-image' | 'ecluse-package';
      /** A VM image's Glance disk format (absent for an OCI image). */
      diskFormat?: string;
      sha256: string;
      /** An OCI image (4.9): where it is served inside, its digest, platforms, and its blobs (all, and carried). */
      image?: {
        repository: string;
        tag: string;
        digest: string;
        platforms: string[];
        blobs: number;
        carriedBlobs: number;
      };
      /** A delta artifact (4.6): its base, and the bytes the volumes carry. */
      delta?: { base: string; carried: number };
      /** écluse's own package (4.10): its architecture and the Node range it needs. */
      package?: { arch: string; node: string };
    }>;
    volumes: Array<{ name: string; size: number; present: boolean }>;
  } | null;
  problems: string[];
}

function decodePayload(bytes: Buffer): Buffer {
  const raw = parseBoundedJson(bytes, 'a signature file', LIMITS.signatureFileBytes) as {
    dsseEnvelope?: { payload?: unknown };
  };
  const payload = raw?.dsseEnvelope?.payload;
  if (typeof payload !== 'string') throw new EcluseError('E_FORMAT', 'a signature file holds no DSSE payload');
  return Buffer.from(payload, 'base64');
}

export async function inspectMedia(media: string): Promise<InspectedBundle[]> {
  const out: InspectedBundle[] = [];
  for (const id of await findBundles(media)) {
    const problems: string[] = [];
    const b: InspectedBundle = { id, verified: false, signatures: [], claimed: null, problems };
    out.push(b);
    let files;
    try {
      files = await readBundleFiles(media, id);
    } catch (e) {
      problems.push((e as Error).message);
      continue;
    }
    let statement: Statement | null = null;
    for (const s of files.signatures) {
      const keyId = s.name.replace(/\.sigstore\.json$/, '');
      const pem = files.certificates.get(keyId);
      let claimedSigner: string | null = null;
      let until: string | null = null;
      if (pem) {
        try {
          const cert = new X509Certificate(pem);
          claimedSigner = /CN=([^\n,]+)/.exec(cert.subject)?.[1] ?? null;
          until = new Date(cert.validTo).toISOString();
        } catch {
          problems.push(`certificate ${keyId.slice(0, 12)} is unreadable`);
        }
      } else problems.push(`no certificate for signature ${keyId.slice(0, 12)}`);
      b.signatures.push({ keyId, claimedSigner, certificateValidUntil: until });
      if (!statement) {
        try {
          statement = parseStatement(decodePayload(s.bytes));
        } catch (e) {
          problems.push(`signature ${keyId.slice(0, 12)}: ${(e as Error).message}`);
        }
      }
    }
    if (files.signatures.length === 0) problems.push('no signature');
    if (statement) {
      const p = statement.predicate;
      const present = new Set(files.volumeFiles);
      b.claimed = {
        station: p.station,
        sequence: p.sequence,
        site: p.site,
        created: p.created,
        expires: p.expires,
        artifacts: p.artifacts.map((a) => ({
          name: a.name,
          version: a.version,
          size: a.size,
          type: a.type,
          sha256: a.sha256,
          ...(a.type === 'vm-image' ? { diskFormat: a.diskFormat } : {}),
          ...(a.type === 'vm-image' && a.delta
            ? { delta: { base: subjectName(a.delta.base), carried: transferSize(a) } }
            : {}),
          ...(a.type === 'oci-image'
            ? {
                image: {
                  repository: a.image.repository,
                  tag: a.image.tag,
                  digest: a.image.digest,
                  platforms: a.image.platforms.map(platformKey),
                  blobs: a.image.blobs.length,
                  carriedBlobs: a.image.blobs.filter((b) => b.carried).length,
                },
              }
            : {}),
          ...(a.type === 'ecluse-package' ? { package: { arch: a.package.arch, node: a.package.node } } : {}),
        })),
        volumes: p.volumes.map((v) => ({ name: v.name, size: v.size, present: present.has(v.name) })),
      };
      for (const v of b.claimed.volumes) if (!v.present) problems.push(`${v.name} is not on this media`);
    }
  }
  return out;
}
