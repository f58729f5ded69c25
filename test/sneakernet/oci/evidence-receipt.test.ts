/** The two smaller 4.9 additions: the `cosign` vendor evidence kind (4.5) and the receipt's `inventory.blobs` (10). */
import { describe, expect, it } from 'vitest';
import { vendorEvidenceSchema } from '../../../sneakernet/evidence.js';
import { LIMITS } from '../../../sneakernet/limits.js';
import { RECEIPT_TYPE, receiptSchema } from '../../../sneakernet/receipt.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('cosign vendor evidence', () => {
  it('is read with its payload and bundle, and nothing else', () => {
    const e = { kind: 'cosign', payload: b64('{"critical":{}}'), bundle: b64('{"mediaType":"x"}') };
    expect(vendorEvidenceSchema.parse(e)).toEqual(e);
    expect(vendorEvidenceSchema.safeParse({ ...e, keyId: 'a'.repeat(64) }).success).toBe(false);
    expect(vendorEvidenceSchema.safeParse({ ...e, payload: 'not base64!' }).success).toBe(false);
    expect(vendorEvidenceSchema.safeParse({ ...e, payload: b64('x'.repeat(64 * 1024 + 3)) }).success).toBe(false);
  });
});

describe('receipt inventory.blobs', () => {
  const receipt = (blobs?: string[]) => ({
    _type: RECEIPT_TYPE,
    site: 'site-a',
    number: 1,
    issued: '2025-01-01T00:00:00Z',
    keyId: 'a'.repeat(64),
    stations: [],
    refused: [],
    inventory: { sha256: 'b'.repeat(64), artifacts: [], ...(blobs ? { blobs } : {}) },
  });

  it('is optional (older receipts), and sorted unique hex when present', () => {
    expect(receiptSchema.safeParse(receipt()).success).toBe(true);
    expect(receiptSchema.safeParse(receipt(['1'.repeat(64), '2'.repeat(64)])).success).toBe(true);
    expect(receiptSchema.safeParse(receipt(['2'.repeat(64), '1'.repeat(64)])).success).toBe(false);
    expect(receiptSchema.safeParse(receipt(['1'.repeat(64), '1'.repeat(64)])).success).toBe(false);
    expect(receiptSchema.safeParse(receipt([`sha256:${'1'.repeat(64)}`])).success).toBe(false);
  });

  it('is bounded by LIMITS.receiptBlobs', () => {
    const many = Array.from({ length: LIMITS.receiptBlobs + 1 }, (_, i) => i.toString(16).padStart(64, '0'));
    expect(receiptSchema.safeParse(receipt(many)).success).toBe(false);
    expect(receiptSchema.safeParse(receipt(many.slice(1))).success).toBe(true);
  });
});
