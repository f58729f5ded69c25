/**
 * Receipts at the export station. The import station's receipt key is pinned per site (`ecluse relay receipt trust
 * KEYFILE --site SITE`, the public key printed by `ecluse receipt key` inside); `ecluse relay receipt import MEDIA`
 * takes the receipts on the media that verify against a pinned key, are for that key's site, are newer than the last
 * one taken, and acknowledge only bundles this station really wrote. Anything else is E_RECEIPT. The newest receipt of
 * a site says what the inside has (its inventory) and which bundle it acknowledged: `ecluse export` then writes only
 * what the inside lacks and refuses to chain past an unacknowledged bundle without --force.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { EcluseError } from '../../sneakernet/errors.js';
import { MEDIA_ROOT_DIR } from '../../sneakernet/layout.js';
import { parseBoundedJson } from '../../sneakernet/statement.js';
import {
  inventoryLines,
  RECEIPT_MAX_BYTES,
  RECEIPT_PAYLOAD_TYPE,
  RECEIPT_SUFFIX,
  RECEIPTS_DIR,
  receiptSchema,
  type Receipt,
} from '../../sneakernet/receipt.js';
import { keyIdOf } from '../../keys/keyid.js';
import { cryptoValid } from '../../keys/verify.js';
import type { RelayDb, RelayHome } from '../catalog.js';
import { exportAt } from '../chains.js';
import { recordEvent } from '../events.js';
import { newestReceipt, pinnedKeyOf, pinnedKeyWithId } from './receipt-rows.js';
import { isoSeconds } from '../../sneakernet/statement.js';

export { acknowledgement, type Acknowledgement } from './acknowledgement.js';

const SITE = /^[A-Za-z0-9][A-Za-z0-9._+:~-]{0,254}$/;
const now = () => isoSeconds();

function refuse(message: string, file?: string): EcluseError {
  return new EcluseError('E_RECEIPT', file ? `${file}: ${message}` : message, { check: 'receipt' });
}

/** Pins the receipt key of `site` (PEM public key file). Replacing a pinned key needs `replace`. */
export function trustReceiptKey(
  db: RelayDb,
  site: string,
  pem: string,
  replace = false,
): { site: string; keyId: string } {
  if (!SITE.test(site)) throw new EcluseError('E_USAGE', `invalid site id "${site}"`);
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey(pem);
  } catch (e) {
    throw new EcluseError('E_KEY', `not a public key in PEM form: ${(e as Error).message}`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new EcluseError('E_KEY', 'a receipt key is an ECDSA P-256 public key (ecluse receipt key prints it)');
  }
  const keyId = keyIdOf(key);
  const existing = pinnedKeyOf(db, site);
  if (existing && existing.key_id !== keyId && !replace) {
    throw new EcluseError(
      'E_INPUT',
      `site ${site} already has receipt key ${existing.key_id.slice(0, 16)}… pinned (use --replace)`,
    );
  }
  db.prepare(
    `INSERT INTO receipt_keys (site, key_id, public_pem, pinned_at) VALUES (?, ?, ?, ?)
     ON CONFLICT(site) DO UPDATE SET key_id = excluded.key_id, public_pem = excluded.public_pem, pinned_at = excluded.pinned_at`,
  ).run(site, keyId, key.export({ type: 'spki', format: 'pem' }).toString(), now());
  return { site, keyId };
}

export interface TakenReceipt {
  file: string;
  site: string;
  number: number;
  issued: string;
  acknowledged: number;
  inventory: number;
  refused: number;
  status: 'taken' | 'already taken';
}

/** Verifies one receipt file; returns the receipt (not yet recorded). */
export function verifyReceipt(db: RelayDb, station: string, file: string, bytes: Buffer): Receipt {
  const json = parseBoundedJson(bytes, file, RECEIPT_MAX_BYTES);
  let bundle: Bundle;
  try {
    bundle = bundleFromJSON(json);
  } catch (e) {
    throw refuse(`not a Sigstore bundle: ${(e as Error).message}`, file);
  }
  if (bundle.content.$case !== 'dsseEnvelope' || bundle.content.dsseEnvelope.payloadType !== RECEIPT_PAYLOAD_TYPE) {
    throw refuse(`not a signed écluse receipt (DSSE, ${RECEIPT_PAYLOAD_TYPE})`, file);
  }
  if (
    bundle.content.dsseEnvelope.signatures.length !== 1 ||
    bundle.verificationMaterial.content.$case !== 'publicKey'
  ) {
    throw refuse('a receipt carries exactly one signature keyed by a public-key hint', file);
  }
  const hint = bundle.verificationMaterial.content.publicKey.hint;
  const pinned = pinnedKeyWithId(db, hint);
  if (!pinned)
    throw refuse(`signed by key ${hint.slice(0, 16)}…, which is not the pinned receipt key of any site`, file);
  const payload = bundle.content.dsseEnvelope.payload;
  const valid = cryptoValid({ name: file, keyId: hint, payload, bundle }, crypto.createPublicKey(pinned.public_pem));
  if (!valid)
    throw refuse(`the signature by the receipt key of site ${pinned.site} does not verify (forged or damaged)`, file);
  const parsed = receiptSchema.safeParse(parseBoundedJson(payload, `${file} (payload)`, RECEIPT_MAX_BYTES));
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw refuse(`malformed receipt: ${i ? `${i.path.join('.')}: ${i.message}` : 'invalid'}`, file);
  }
  const r = parsed.data;
  if (r.site !== pinned.site || r.keyId !== pinned.key_id) {
    throw refuse(`the receipt says site ${r.site}, but it is signed with the receipt key of site ${pinned.site}`, file);
  }
  const digest = crypto.createHash('sha256').update(inventoryLines(r.inventory.artifacts)).digest('hex');
  if (digest !== r.inventory.sha256) throw refuse('the inventory digest does not match the inventory', file);
  const mine = r.stations.find((s) => s.station === station);
  if (mine) {
    const made = exportAt(db, r.site, mine.sequence);
    if (!made || made.bundle_id !== mine.bundleId || made.statement_sha256 !== mine.statementSha256) {
      throw refuse(
        `it acknowledges bundle ${station} #${mine.sequence} for site ${r.site} (${mine.bundleId}), which this station never wrote`,
        file,
      );
    }
  }
  return r;
}

/** `ecluse relay receipt import MEDIA`: takes every receipt on the media (newest last). */
export async function importReceipts(home: RelayHome, media: string): Promise<TakenReceipt[]> {
  const dir = path.join(media, MEDIA_ROOT_DIR, RECEIPTS_DIR);
  let names: string[];
  try {
    names = (await fs.promises.readdir(dir)).filter((n) => n.endsWith(RECEIPT_SUFFIX) && !n.startsWith('.')).sort();
  } catch {
    names = [];
  }
  if (names.length === 0) throw new EcluseError('E_NOT_FOUND', `no receipt on ${media} (looked in ecluse/receipts/)`);
  const out: TakenReceipt[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const st = await fs.promises.lstat(file);
    if (!st.isFile()) throw refuse('not a regular file', name);
    if (st.size > RECEIPT_MAX_BYTES) throw refuse(`larger than ${RECEIPT_MAX_BYTES} bytes`, name);
    const r = verifyReceipt(home.db, home.station, name, await fs.promises.readFile(file));
    const last = newestReceipt(home.db, r.site);
    const acknowledged = r.stations.find((s) => s.station === home.station)?.sequence ?? 0;
    const summary = {
      file: name,
      site: r.site,
      number: r.number,
      issued: r.issued,
      acknowledged,
      inventory: r.inventory.artifacts.length,
      refused: r.refused.length,
    };
    if (last && r.number === last.number && JSON.stringify(r) === last.payload) {
      out.push({ ...summary, status: 'already taken' });
      continue;
    }
    if (last && r.number <= last.number) {
      throw refuse(
        `receipt ${r.number} of site ${r.site} is not newer than receipt ${last.number}, already taken (a replay?)`,
        name,
      );
    }
    home.db
      .prepare('INSERT INTO receipts (site, number, issued, acknowledged, payload, taken_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(r.site, r.number, r.issued, acknowledged, JSON.stringify(r), now());
    recordEvent(home.db, 'receipt.taken', {
      site: r.site,
      subject: `receipt ${r.number}`,
      details: { acknowledged, refused: r.refused.length, gaps: r.gaps?.length ?? 0 },
    });
    out.push({ ...summary, status: 'taken' });
  }
  return out;
}
