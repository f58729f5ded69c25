/**
 * What the signers' key folders add to a bundle `ecluse export` writes: the root documents and the newest revocation
 * list (KEYDIR/trust/, beside KEYDIR/signers/), and the sizes of those files and of the certificates, for the plan.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError } from '../../sneakernet/errors.js';
import { ROOT_DOCUMENT_PATTERN, TRUST_DIR, TRUST_FILES } from '../../sneakernet/layout.js';
import { CERT_FILE } from '../../keys/keydir-files.js';
import type { ExportRequest } from '../../relay/export.js';

/**
 * The root documents of the signers' key folder (root rotations, KEYDIR/trust/root-N.*.sigstore.json), carried in every
 * bundle; keys/root-rotation.ts (with the ceremony's certificate issuing) is loaded only when there are some.
 */
export async function rootDocumentsOf(keyDir: string): Promise<Array<{ name: string; bytes: Buffer }>> {
  const trust = path.join(keyDir, TRUST_DIR);
  if (!fs.existsSync(trust) || !fs.readdirSync(trust).some((n) => ROOT_DOCUMENT_PATTERN.test(n))) return [];
  return (await import('../../keys/root-rotation.js')).keyDirRootFiles(keyDir);
}

/**
 * The newest revocation list of the signers' key folders (KEYDIR/trust/, beside KEYDIR/signers/), verified against
 * that folder's root. Refuses to sign with a key the list revokes: the import station would refuse the bundle.
 */
export async function newestRevocations(
  dirs: string[],
  signers: Array<{ name: string; keyId: string }>,
): Promise<Buffer | null> {
  const { loadTrustAnchors } = await import('../../keys/trust.js');
  let best: { version: number; bytes: Buffer } | null = null;
  for (const dir of dirs) {
    const keyDir = path.resolve(dir, '..', '..');
    if (!fs.existsSync(path.join(keyDir, 'trust', 'trust.json'))) continue;
    const anchors = loadTrustAnchors(path.join(keyDir, 'trust'));
    // Verifying a list loads the Sigstore verifier and the certificate checks: only when the folder holds one (the
    // same name as on the media, keys/revocation.ts REVOCATIONS_FILE).
    if (!fs.existsSync(path.join(keyDir, TRUST_DIR, TRUST_FILES[0]))) continue;
    const { readKeyDirRevocations } = await import('../../keys/revocation.js');
    const found = readKeyDirRevocations(keyDir, anchors);
    if (!found) continue;
    for (const s of signers) {
      const r = found.list.revoked.find((x) => x.keyId === s.keyId);
      if (r)
        throw new EcluseError(
          'E_REVOKED',
          `signer ${s.name} was revoked on ${r.revokedAt}; the import station would refuse its signature`,
        );
    }
    if (!best || found.list.version > best.version) best = { version: found.list.version, bytes: found.bytes };
  }
  return best?.bytes ?? null;
}

/**
 * What the bundle files will hold from the signers' folders, for the plan to count them as they are (relay/media-plan.ts
 * allows for them when not given): each signer's certificate, and the trust files `export` carries (the largest
 * revocation list of their key folders, the root documents of the first). Sizes only: nothing is verified here.
 */
export function signerFileBytes(dirs: string[]): Pick<ExportRequest, 'certificateBytes' | 'trustFileBytes'> {
  if (dirs.length === 0) return {};
  const size = (f: string) => fs.statSync(f, { throwIfNoEntry: false })?.size;
  const certificates = dirs.map((d) => size(path.join(d, CERT_FILE)));
  const lists = dirs.map((d) => size(path.join(path.resolve(d, '..', '..'), TRUST_DIR, TRUST_FILES[0])) ?? 0);
  const firstTrust = path.join(path.resolve(dirs[0] as string, '..', '..'), TRUST_DIR);
  const roots = fs.existsSync(firstTrust)
    ? fs
        .readdirSync(firstTrust)
        .filter((n) => ROOT_DOCUMENT_PATTERN.test(n))
        .map((n) => size(path.join(firstTrust, n)) ?? 0)
    : [];
  const largestList = Math.max(...lists);
  return {
    // A folder without its certificate is refused when the signer is loaded; the plan then allows for one.
    ...(certificates.every((c): c is number => c !== undefined) ? { certificateBytes: certificates } : {}),
    trustFileBytes: [...(largestList > 0 ? [largestList] : []), ...roots],
  };
}
