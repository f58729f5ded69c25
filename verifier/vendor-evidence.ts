/**
 * The vendor evidence a statement carries (docs/FORMAT.md 4.5), re-verified at the import station against the vendor
 * keys the site policy pins (`vendorKeys` on a rule): a compromised export station alone cannot bring in an artifact
 * its vendor never signed, even with a good bundle signature. An artifact whose deciding rule pins vendor keys must
 * carry evidence that verifies with one of them and names exactly the artifact's digest; otherwise the import is
 * refused (E_VENDOR_UNTRUSTED, E_VENDOR_SIGNATURE, E_VENDOR_DIGEST). Rules without `vendorKeys` do not look at it.
 *
 * Runs after the volume digests were checked (the statement's digests are then the bytes' digests). A Sigstore
 * message signature is over the artifact's bytes: at import it is checked over the staged file; `verify` (which
 * stages nothing) checks its signed digest only. Glance image signatures: vendor-evidence-glance.ts.
 */
import { EcluseError } from '../sneakernet/errors.js';
import type { Statement } from '../sneakernet/statement.js';
import {
  isMessageSignature,
  parseChecksums,
  readOpenPgpKey,
  readVendorBundle,
  verifyOpenPgp,
  verifySigstoreBlob,
} from '../keys/vendor.js';
import { passed, type CheckRecord } from './checks.js';
import type { Placement } from './policy/admission.js';
import type { ActivePolicy } from './policy/store.js';
import type { StagedArtifact } from './staging.js';
import { checkGlanceEvidence } from './vendor-evidence-glance.js';
import { verifyCosignSignature } from '../keys/cosign-signature.js';
import { subjectName } from '../sneakernet/subject.js';

function splitKeys(keys: string[]): { openpgp: Buffer[]; pem: string[] } {
  const openpgp: Buffer[] = [];
  const pem: string[] = [];
  for (const k of keys) {
    if (k.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----'))
      openpgp.push(readOpenPgpKey(Buffer.from(k, 'utf8')).packets);
    else pem.push(k);
  }
  return { openpgp, pem };
}

export async function checkVendorEvidence(
  policy: ActivePolicy,
  placements: Placement[],
  statement: Statement,
  staged: StagedArtifact[],
): Promise<CheckRecord[]> {
  const checked: string[] = [];
  for (const [index, a] of statement.predicate.artifacts.entries()) {
    const id = subjectName(a);
    const ruleName = placements.find((p) => p.artifact === id)?.rule;
    const rule = policy.policy.rules.find((r) => r.name === ruleName);
    if (!rule?.vendorKeys) continue;
    const what = `${a.name} ${a.version}`;
    const ctx = { artifact: id, rule: rule.name };
    const e = a.provenance.evidence;
    if (!e) {
      throw new EcluseError(
        'E_VENDOR_UNTRUSTED',
        `${what} carries no vendor evidence, and policy rule ${rule.name} requires a vendor signature`,
        { check: 'vendor-evidence', ...ctx },
      );
    }
    const keys = splitKeys(rule.vendorKeys);
    if (a.type === 'oci-image' && e.kind !== 'cosign') {
      throw new EcluseError(
        'E_VENDOR_SIGNATURE',
        `${what}: a container image is vouched for by a cosign signature of its manifest digest, not by ${e.kind} evidence`,
        { check: 'vendor-signature', ...ctx },
      );
    }
    if (e.kind === 'cosign') {
      if (a.type !== 'oci-image') {
        throw new EcluseError('E_VENDOR_SIGNATURE', `${what}: a cosign signature vouches for container images only`, {
          check: 'vendor-signature',
          ...ctx,
        });
      }
      const { keyId } = verifyCosignSignature({
        payload: Buffer.from(e.payload, 'base64'),
        bundle: Buffer.from(e.bundle, 'base64'),
        keys: keys.pem,
        digest: a.image.digest,
        what,
      });
      checked.push(`${id} (cosign ${keyId.slice(0, 12)} over ${a.image.digest.slice(0, 19)})`);
    } else if (e.kind === 'glance-image') {
      checked.push(await checkGlanceEvidence(e, a, staged[index], keys.pem, ctx));
    } else if (e.kind === 'openpgp-checksums') {
      const verified = verifyOpenPgp({
        keys: keys.openpgp,
        data: Buffer.from(e.checksums, 'base64'),
        signature: e.signature === null ? null : Buffer.from(e.signature, 'base64'),
        what: `the vendor checksum file of ${what}`,
      });
      const listed = parseChecksums(verified.content.toString('utf8')).filter(
        (x) => x.file === e.file && x.algorithm === e.algorithm,
      );
      const expected = e.algorithm === 'sha256' ? a.sha256 : a.sha512;
      if (listed.length === 0 || listed.some((x) => x.digest !== expected)) {
        throw new EcluseError(
          'E_VENDOR_DIGEST',
          `${what}: the vendor's signed checksum file ${listed.length === 0 ? `does not list ${e.file}` : `gives ${e.file} another ${e.algorithm}`}`,
          { check: 'vendor-digest', ...ctx },
        );
      }
      checked.push(`${id} (OpenPGP ${verified.fingerprint.slice(-16)})`);
    } else {
      const bundle = Buffer.from(e.bundle, 'base64');
      const file = staged[index]?.file ?? null;
      if (isMessageSignature(bundle) && !file) {
        // verify mode: no staged copy; the signature over the bytes is checked at import.
        const b = readVendorBundle(bundle, what);
        const md = b.content.$case === 'messageSignature' ? b.content.messageSignature.messageDigest : undefined;
        if (!md || md.digest.toString('hex') !== a.sha256) {
          throw new EcluseError('E_VENDOR_DIGEST', `${what}: the vendor signed another digest than the artifact's`, {
            check: 'vendor-digest',
            ...ctx,
          });
        }
        checked.push(`${id} (Sigstore digest only: the signature over the bytes is checked at import)`);
        continue;
      }
      const { keyId } = await verifySigstoreBlob({
        bundle,
        keys: keys.pem,
        sha256: a.sha256,
        sha512: a.sha512,
        artifactFile: file ?? '',
        what,
      });
      checked.push(`${id} (Sigstore ${keyId.slice(0, 12)})`);
    }
  }
  return checked.length ? [passed('vendor-evidence', `vendor signatures verified: ${checked.join(', ')}`)] : [];
}
