/**
 * What the newest receipt taken from a site acknowledges (relay/receipts/receipts.ts takes and verifies receipts): the
 * export plan reads it from the catalog. Apart from receipts.ts so an export does not load the receipt verification
 * (the Sigstore and X.509 verifiers), which only `relay receipt import` runs.
 */
import { subjectName } from '../../sneakernet/statement.js';
import { receiptSchema, type Receipt } from '../../sneakernet/receipt.js';
import type { RelayDb } from '../catalog.js';
import { newestReceipt } from './receipt-rows.js';

export interface Acknowledgement {
  number: number;
  issued: string;
  /** The highest sequence of this station the site has accepted (0: none yet). */
  sequence: number;
  /** sha256 of every artifact the site's store holds from bundles. */
  inventory: Set<string>;
  /** `name@version` of every artifact the site's store holds (an OCI image's sha256 depends on what travelled). */
  held: Set<string>;
  /** sha256 (hex) of every OCI blob the site's registry store holds (4.9; empty for receipts that predate it). */
  blobs: Set<string>;
  /** The receipt's recent refusals (of any station's bundles: artifact refusals matter whoever sent them). */
  refused: Receipt['refused'];
  /** Bundles of this station below `sequence` the site has not accepted (missing, or refused and not since). */
  gaps: Array<{ sequence: number; refusedWith: string | null }>;
  /** Artifacts the site retired from its store (FORMAT.md 10.2): never a delta base, never sent again. */
  retired: NonNullable<Receipt['retired']>;
}

/** What the newest receipt taken from `site` says, or null when no receipt was taken (receipts not in use). */
export function acknowledgement(db: RelayDb, site: string, station: string): Acknowledgement | null {
  const row = newestReceipt(db, site);
  if (!row) return null;
  const r = receiptSchema.parse(JSON.parse(row.payload));
  return {
    number: row.number,
    issued: row.issued,
    sequence: r.stations.find((s) => s.station === station)?.sequence ?? 0,
    inventory: new Set(r.inventory.artifacts.map((a) => a.sha256)),
    held: new Set(r.inventory.artifacts.map((a) => subjectName(a))),
    blobs: new Set(r.inventory.blobs ?? []),
    refused: r.refused,
    gaps: (r.gaps ?? [])
      .filter((g) => g.station === station)
      .map((g) => ({ sequence: g.sequence, refusedWith: g.refusedWith })),
    retired: r.retired ?? [],
  };
}
