/**
 * The import station's home folder (`--home` or `ECLUSE_HOME`), the one place its layout is written down:
 *   ecluse.sqlite                 catalog, monotonic state, audit
 *   trust/                        the pinned trust anchors installed by `ecluse site init`
 *   store/images/<file>           promoted image data, referenced by the catalog
 *   store/staging/                private staging of imports and uploads in progress (mode 0700); never served
 *   audit/audit-key.pem           the audit key (checkpoints), made on first use; audit-key.pub.pem beside it
 *   audit/checkpoint.json         the latest signed checkpoint, kept beside the database
 *   receipts/receipt-key.pem      the receipt key, made on first use; receipt-key.pub.pem is what the outside pins
 *   signing/image-signing.key     the image-signing key (Glance img_signature), made on first use; .crt beside it
 *   registry/blobs/sha256/<hex>   the container images' blobs (manifests, configs, layers), content-addressed, promoted
 *                                 by atomic rename once verified (verifier/registry/blob-store.ts)
 */
import path from 'node:path';

/** A private key file and its public half (PEM). */
export interface KeyFiles {
  priv: string;
  pub: string;
}

export interface ImportHome {
  root: string;
  /** The SQLite database. */
  database: string;
  trust: string;
  images: string;
  staging: string;
  audit: string;
  auditKey: KeyFiles;
  latestCheckpoint: string;
  receipts: string;
  receiptKey: KeyFiles;
  /** The image-signing key and certificate (verifier/image-signature.ts). */
  signing: { dir: string; key: string; cert: string };
  /** The container registry's blob store: `<registry>/blobs/sha256/<hex>`. */
  registryBlobs: string;
}

export function importHome(root: string): ImportHome {
  const audit = path.join(root, 'audit');
  const receipts = path.join(root, 'receipts');
  const signing = path.join(root, 'signing');
  return {
    root,
    database: path.join(root, 'ecluse.sqlite'),
    trust: path.join(root, 'trust'),
    images: path.join(root, 'store', 'images'),
    staging: path.join(root, 'store', 'staging'),
    audit,
    auditKey: { priv: path.join(audit, 'audit-key.pem'), pub: path.join(audit, 'audit-key.pub.pem') },
    latestCheckpoint: path.join(audit, 'checkpoint.json'),
    receipts,
    receiptKey: { priv: path.join(receipts, 'receipt-key.pem'), pub: path.join(receipts, 'receipt-key.pub.pem') },
    signing: {
      dir: signing,
      key: path.join(signing, 'image-signing.key'),
      cert: path.join(signing, 'image-signing.crt'),
    },
    registryBlobs: path.join(root, 'registry', 'blobs', 'sha256'),
  };
}

/** The home of an open database (`<home>/ecluse.sqlite`), or null for an in-memory one. */
export function importHomeOfDatabase(db: { readonly name: string }): ImportHome | null {
  if (!db.name || db.name === ':memory:') return null;
  return importHome(path.dirname(db.name));
}
