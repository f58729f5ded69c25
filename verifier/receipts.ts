/**
 * Import receipts (import station): `ecluse receipt key` prints this station's receipt public key (ECDSA P-256, made
 * on first use under `<home>/receipts/`, private key 0600) for the export station to pin; `ecluse receipt export --to
 * MEDIA` writes a signed receipt (docs/FORMAT.md section 10): the last bundle accepted from each export station, the
 * recent refusals, and the inventory of what the store holds from bundles. Receipts are numbered 1, 2, 3 ...
 * (setting `receipt_number`), written under a temporary name, fsynced, then renamed.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { syncDir, writeFileSynced } from '../sneakernet/durable.js';
import { EcluseError } from '../sneakernet/errors.js';
import { MEDIA_ROOT_DIR } from '../sneakernet/layout.js';
import {
  inventoryLines,
  RECEIPT_PAYLOAD_TYPE,
  RECEIPT_TYPE,
  RECEIPTS_DIR,
  receiptFileName,
  receiptSchema,
  type Receipt,
} from '../sneakernet/receipt.js';
import { keyIdOf } from '../keys/keyid.js';
import { signDsse } from '../keys/signer.js';
import { appendAudit } from './audit.js';
import { getSetting, glanceTime, setSetting } from './db.js';
import { gaps, highWaters, MAX_GAPS_LISTED } from './accepted-state.js';
import { heldArtifacts } from './image-catalog.js';
import { recentRefusals } from './audit/decisions.js';
import { LIMITS } from '../sneakernet/limits.js';
import { containerImages, heldBlobHexes } from './registry/images.js';
import { retiredImages } from './retired-images.js';
import { handedOverPackages } from './self-update/packages.js';
import type { Site } from './site.js';

/**
 * What a receipt takes from an `import.refused` event's details (refusal.ts writes them; events written before the
 * details had this shape give what they have): the sequence, and the artifacts refused with their rule.
 */
function refusalDetails(text: string): {
  sequence: number | null;
  artifacts: NonNullable<Receipt['refused'][number]['artifacts']>;
} {
  let d: unknown;
  try {
    d = JSON.parse(text);
  } catch {
    d = {};
  }
  const o = (typeof d === 'object' && d !== null ? d : {}) as { sequence?: unknown; artifacts?: unknown };
  const sequence =
    typeof o.sequence === 'number' && Number.isSafeInteger(o.sequence) && o.sequence > 0 ? o.sequence : null;
  const parsed = receiptSchema.shape.refused.element.shape.artifacts.safeParse(o.artifacts);
  return { sequence, artifacts: parsed.success ? (parsed.data ?? []) : [] };
}

export interface ReceiptKey {
  privateKey: crypto.KeyObject;
  publicPem: string;
  keyId: string;
}

export function receiptKey(site: Site): ReceiptKey {
  const dir = site.home.receipts;
  const file = site.home.receiptKey.priv;
  if (!fs.existsSync(file)) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    fs.writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600, flag: 'wx' });
  }
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey(fs.readFileSync(file));
  } catch (e) {
    throw new EcluseError('E_KEY', `the receipt key ${file} is unusable: ${(e as Error).message}`);
  }
  const publicKey = crypto.createPublicKey(privateKey);
  const publicPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const pubFile = site.home.receiptKey.pub;
  if (!fs.existsSync(pubFile)) fs.writeFileSync(pubFile, publicPem, { mode: 0o644 });
  return { privateKey, publicPem, keyId: keyIdOf(publicKey) };
}

/** The receipt as of now (not signed, not numbered yet). */
export function buildReceipt(site: Site, number: number, keyId: string, now = new Date()): Receipt {
  const stations = highWaters(site.db).map((s) => ({
    station: s.station,
    sequence: s.sequence,
    bundleId: s.bundleId,
    statementSha256: s.statementSha256,
  }));
  const refused = recentRefusals(site.db, 100)
    .reverse()
    .map((r) => {
      const d = refusalDetails(r.details);
      return {
        at: r.at.replace(/\.\d+Z$/, 'Z'),
        code: r.code ?? 'E_INTERNAL',
        bundleId: r.bundle_id,
        station: r.station,
        message: r.message.slice(0, 4096),
        sequence: d.sequence,
        ...(d.artifacts.length > 0 ? { artifacts: d.artifacts.slice(0, 1000) } : {}),
      };
    });
  const artifacts = heldArtifacts(site.db);
  // Container images (4.9) are artifacts too; the blobs the registry holds let the export station leave them out.
  const held = new Set(artifacts.map((a) => `${a.name}\t${a.version}\t${a.sha256}`));
  for (const i of containerImages(site.db, 100_000)) {
    if (!held.has(`${i.name}\t${i.version}\t${i.sha256}`))
      artifacts.push({ name: i.name, version: i.version, sha256: i.sha256 });
  }
  // écluse's own packages (4.10) handed over to the installer: delivered, so the export station does not send them again.
  for (const h of handedOverPackages(site.db)) {
    if (!held.has(`ecluse\t${h.version}\t${h.sha256}`))
      artifacts.push({ name: 'ecluse', version: h.version, sha256: h.sha256 });
  }
  artifacts.sort((x, y) => (x.name === y.name ? (x.version < y.version ? -1 : 1) : x.name < y.name ? -1 : 1));
  const blobs = heldBlobHexes(site.db, LIMITS.receiptBlobs);
  // Addition (FORMAT.md 10): what the site retired, so that the export station never bases a delta on it. Left out
  // when nothing was retired: export stations that predate the addition read such receipts as before.
  const retired = retiredImages(site.db, 10_000).map((r) => ({
    name: r.name,
    version: r.version,
    sha256: r.sha256,
    at: r.retired_at,
  }));
  return {
    _type: RECEIPT_TYPE,
    site: site.siteId,
    number,
    issued: glanceTime(now),
    keyId,
    stations,
    refused,
    gaps: gaps(site.db, MAX_GAPS_LISTED),
    ...(retired.length > 0 ? { retired } : {}),
    inventory: {
      sha256: crypto.createHash('sha256').update(inventoryLines(artifacts)).digest('hex'),
      artifacts,
      ...(blobs.length > 0 ? { blobs } : {}),
    },
  };
}

export interface WrittenReceipt {
  file: string;
  number: number;
  keyId: string;
  stations: Receipt['stations'];
  inventory: number;
  refused: number;
  /** Bundles below a station's high-water mark not accepted (missing or refused): named, not blocking. */
  gaps: NonNullable<Receipt['gaps']>;
  /** Artifacts retired from the store that the receipt lists (`retired`). */
  retired: number;
}

/** Signs and writes the next receipt onto the media; the number advances only once it is on the media. */
export async function exportReceipt(site: Site, media: string, now = new Date()): Promise<WrittenReceipt> {
  const key = receiptKey(site);
  const number = Number(getSetting(site.db, 'receipt_number') ?? '0') + 1;
  const receipt = buildReceipt(site, number, key.keyId, now);
  const signed = await signDsse(key.privateKey, RECEIPT_PAYLOAD_TYPE, Buffer.from(JSON.stringify(receipt), 'utf8'));
  const dir = path.join(media, MEDIA_ROOT_DIR, RECEIPTS_DIR);
  await fs.promises.mkdir(dir, { recursive: true });
  const name = receiptFileName(site.siteId, number);
  const tmp = path.join(dir, `.partial-${name}`);
  await writeFileSynced(tmp, signed, { flag: 'w' });
  await fs.promises.rename(tmp, path.join(dir, name));
  await syncDir(dir);
  site.db.transaction(() => {
    setSetting(site.db, 'receipt_number', String(number));
    appendAudit(site.db, {
      kind: 'receipt.exported',
      outcome: 'info',
      message: `receipt ${number} written to ${media}: ${receipt.stations.map((s) => `${s.station} #${s.sequence}`).join(', ') || 'no bundle yet'}, ${receipt.inventory.artifacts.length} artifact(s)${
        receipt.gaps?.length
          ? `, ${receipt.gaps.length} gap(s): ${receipt.gaps
              .slice(0, 20)
              .map((g) => `${g.station} #${g.sequence}`)
              .join(', ')}`
          : ''
      }`,
      media,
      details: { number, keyId: key.keyId, inventorySha256: receipt.inventory.sha256 },
    });
  })();
  return {
    file: path.join(dir, name),
    number,
    keyId: key.keyId,
    stations: receipt.stations,
    inventory: receipt.inventory.artifacts.length,
    refused: receipt.refused.length,
    gaps: receipt.gaps ?? [],
    retired: receipt.retired?.length ?? 0,
  };
}
