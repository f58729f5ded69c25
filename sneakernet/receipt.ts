/**
 * The import receipt (docs/FORMAT.md section 10): what an import station has accepted and refused, signed by its
 * receipt key, carried back out on media so the export station writes only what the inside lacks.
 *
 *   <media>/ecluse/receipts/<site>-<number>.sigstore.json
 *
 * is a Sigstore bundle with a DSSE envelope (payload type RECEIPT_PAYLOAD_TYPE) over the receipt JSON, keyed by a
 * public-key hint that is the receipt key's id (SHA-256 of its SPKI DER); the signature is ECDSA P-256 with SHA-256.
 */
import { z } from 'zod';
import { LIMITS } from './limits.js';
import { imageName } from './schema-parts.js';

export const RECEIPT_TYPE = 'https://ecluse.dev/receipt/v1';
export const RECEIPT_PAYLOAD_TYPE = 'application/vnd.ecluse.receipt+json';
export const RECEIPTS_DIR = 'receipts';
export const RECEIPT_SUFFIX = '.sigstore.json';
/**
 * Largest receipt file read (the inventory grows with the store): 32 MiB, room for `inventory.blobs` at its bound
 * (200 000 digests of 67 characters, base64 in the envelope). Was 8 MiB before 4.9.
 */
export const RECEIPT_MAX_BYTES = 32 * 1024 * 1024;

const identifier = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+:~-]*$/);
const hex256 = z.string().regex(/^[0-9a-f]{64}$/);
const time = z.iso.datetime({ offset: false });

export const receiptSchema = z.strictObject({
  _type: z.literal(RECEIPT_TYPE),
  site: identifier,
  /** 1, 2, 3 ... per import station: an export station takes only receipts newer than the last it took. */
  number: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  issued: time,
  keyId: hex256,
  /** The last bundle accepted from each export station (the sequence high-water mark). */
  stations: z
    .array(
      z.strictObject({
        station: identifier,
        sequence: z.number().int().positive(),
        bundleId: z.string().max(64),
        statementSha256: hex256,
      }),
    )
    .max(10_000),
  /** Recent refusals (newest last): what was refused and why. */
  refused: z
    .array(
      z.strictObject({
        at: time,
        code: z.string().max(64),
        bundleId: z.string().max(64).nullable(),
        station: z.string().max(255).nullable(),
        message: z.string().max(4096),
        /** Addition: the refused bundle's sequence in its station's chain for this site, when the statement was read. */
        sequence: z.number().int().positive().max(Number.MAX_SAFE_INTEGER).nullable().optional(),
        /**
         * Addition: the artifacts this refusal is about (E_NOT_ALLOWED: the ones the site policy refused, with the rule;
         * E_ROLLBACK: the ones not newer than the site holds). The export station leaves these out of its next export.
         */
        artifacts: z
          .array(
            z.strictObject({
              name: z.string().min(1).max(255),
              version: z.string().min(1).max(255),
              sha256: hex256,
              rule: z.string().max(255).nullable(),
            }),
          )
          .max(1000)
          .optional(),
      }),
    )
    .max(1000),
  /**
   * Addition: bundles the import station has not accepted below each station's high-water mark (missing, or refused
   * and not accepted since): a gap is named, it does not block (docs/FORMAT.md section 6).
   */
  gaps: z
    .array(
      z.strictObject({
        station: identifier,
        sequence: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
        /** The code of the last refusal of that sequence, or null when the bundle never arrived. */
        refusedWith: z.string().max(64).nullable(),
      }),
    )
    .max(10_000)
    .optional(),
  /**
   * Addition: artifacts the site retired from its store (`ecluse image retire`, the policy's `keepNewest`), newest
   * first. They are not in the inventory: the export station never bases a delta on them, and never sends them again.
   */
  retired: z
    .array(
      z.strictObject({
        name: imageName,
        version: identifier,
        sha256: hex256,
        at: time,
      }),
    )
    .max(10_000)
    .optional(),
  /** What the store holds that came through bundles; `sha256` digests the sorted `name\tversion\tsha256\n` lines. */
  inventory: z.strictObject({
    sha256: hex256,
    artifacts: z.array(z.strictObject({ name: imageName, version: identifier, sha256: hex256 })).max(100_000),
    /**
     * Addition (4.9): the sha256 (hex) of every OCI blob the import station's registry store holds, sorted, unique.
     * The export station leaves these blobs out of its next bundles; without it, it carries every blob.
     */
    blobs: z
      .array(hex256)
      .max(LIMITS.receiptBlobs)
      .refine((b) => b.every((d, i) => i === 0 || (b[i - 1] as string) < d), 'sorted and unique')
      .optional(),
  }),
});

export type Receipt = z.infer<typeof receiptSchema>;

export function inventoryLines(artifacts: Receipt['inventory']['artifacts']): string {
  return artifacts
    .map((a) => `${a.name}\t${a.version}\t${a.sha256}\n`)
    .sort()
    .join('');
}

export function receiptFileName(site: string, number: number): string {
  return `${site}-${String(number).padStart(6, '0')}${RECEIPT_SUFFIX}`;
}
