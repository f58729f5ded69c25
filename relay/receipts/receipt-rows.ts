/**
 * The `receipt_keys` and `receipts` tables (created in catalog.ts), their reads: the receipt key pinned for each site,
 * and every receipt taken. Rows are checked as they are read (a row the schema does not describe is E_STORE).
 */
import { z } from 'zod';
import { storedRows } from '../../sneakernet/stored-rows.js';
import type { RelayDb } from '../relay-db.js';

const keyRow = z.object({ site: z.string(), key_id: z.string(), public_pem: z.string() });
const keys = storedRows(
  'receipt_keys',
  keyRow,
  "pin the site's receipt key again (ecluse relay receipt trust KEYFILE --site SITE --replace)",
);

/** The receipt key pinned for a site, if any. */
export function pinnedKeyOf(db: RelayDb, site: string): z.output<typeof keyRow> | undefined {
  return keys.get(db, 'SELECT site, key_id, public_pem FROM receipt_keys WHERE site = ?', site);
}

/** The site whose pinned receipt key has this id, if any. */
export function pinnedKeyWithId(db: RelayDb, keyId: string): z.output<typeof keyRow> | undefined {
  return keys.get(db, 'SELECT site, key_id, public_pem FROM receipt_keys WHERE key_id = ?', keyId);
}

/** A receipt taken: `payload` is the receipt's JSON exactly as recorded. */
const receiptRow = z.object({
  number: z.number().int().nonnegative(),
  issued: z.string(),
  payload: z.string(),
});
const receipts = storedRows(
  'receipts',
  receiptRow,
  "take the site's newest receipt again (ecluse relay receipt import MEDIA) or restore the station home",
);

/** The newest receipt taken from a site, if any. */
export function newestReceipt(db: RelayDb, site: string): z.output<typeof receiptRow> | undefined {
  return receipts.get(
    db,
    'SELECT number, issued, payload FROM receipts WHERE site = ? ORDER BY number DESC LIMIT 1',
    site,
  );
}
