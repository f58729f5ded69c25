/**
 * The shared pieces of the retirement tests (test/e2e/image-retire.test.ts, test/e2e/image-retire-deletion.test.ts):
 * the shape of `ecluse image list --json` and the payload of the receipt written to a medium, where a retired version
 * is listed.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The receipt payload (decoded DSSE) written to `media`. */
export function receiptOn(media: string): {
  inventory: { artifacts: Array<{ name: string; version: string }> };
  retired?: Array<{ name: string; version: string; sha256: string; at: string }>;
} {
  const dir = path.join(media, 'ecluse', 'receipts');
  const name = fs.readdirSync(dir).filter((n) => !n.startsWith('.'))[0] as string;
  const bundle = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as { dsseEnvelope: { payload: string } };
  return JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, 'base64').toString('utf8')) as ReturnType<
    typeof receiptOn
  >;
}

/** What `ecluse image list --json` prints. */
export interface Listed {
  artifacts: Array<{
    name: string;
    keepNewest: number | null;
    images: Array<{ id: string; version: string; listed: boolean }>;
  }>;
  retired: Array<{ name: string; version: string; reason: string }>;
}
