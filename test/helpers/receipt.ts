/**
 * The payload of the receipt `ecluse receipt export` wrote to a medium (the decoded DSSE payload of its one file under
 * ecluse/receipts/), for the tests that read what a receipt tells the export station.
 */
import fs from 'node:fs';
import path from 'node:path';

export interface ReceiptPayload {
  inventory: { artifacts: Array<{ name: string; version: string }> };
  retired?: Array<{ name: string; version: string; sha256: string; at: string }>;
  refused?: Array<{ code: string; sequence: number; artifacts: unknown[] }>;
}

/** The receipt payload (decoded DSSE) written to `media`. */
export function receiptOn(media: string): ReceiptPayload {
  const dir = path.join(media, 'ecluse', 'receipts');
  const name = fs.readdirSync(dir).filter((n) => !n.startsWith('.'))[0] as string;
  const bundle = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as { dsseEnvelope: { payload: string } };
  return JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8')) as ReceiptPayload;
}
