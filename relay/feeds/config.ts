/**
 * Vendor feeds declared at the export station (`ecluse relay feed add|list|remove`, `ecluse relay feeds apply FILE`).
 * A feed names a vendor, the product (the artifact name at the site), the artifact type, where the vendor publishes
 * (an HTTP(S) URL or a local folder) and the vendor's trust material. The trust material is **pinned** when the feed
 * is declared: the key bytes are copied into the catalog, so editing or losing the key file later changes nothing.
 *
 * Kinds:
 * - `checksums`: a checksum file (SHA256SUMS, SHA512SUMS, CHECKSUM) signed with OpenPGP, detached (`signature:`
 *   SHA256SUMS.gpg, .sign, .asc) or clear-signed (no `signature:`); the images it lists and `match` are candidates.
 * - `sigstore`: artifacts each with a Sigstore bundle beside them (`<file>.sigstore.json`), signed by a vendor key.
 * - `glance`: images from an outside Glance, with Glance image signatures by pinned certificates (glance-config.ts).
 * - `registry`: container images, the tags of one repository, cosign-signed by pinned keys (registry-config.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { readOperatorFile } from '../../sneakernet/operator-file.js';
import { z } from 'zod';
import { EcluseError } from '../../sneakernet/errors.js';
import { jsonText, storedRows } from '../../sneakernet/stored-rows.js';
import { CONTAINER_FORMATS, DISK_FORMATS } from '../../sneakernet/statement.js';
import { keyIdOf } from '../../keys/keyid.js';
import { readOpenPgpKey } from '../../keys/vendor.js';
import type { RelayDb } from '../catalog.js';
import { isoSeconds } from '../../sneakernet/statement.js';
import { checkVersionPattern, commonFeedFields } from './common.js';
import { registryFeedSchema, type RegistryFeedConfig } from './registry-config.js';
import {
  glanceFeedSchema,
  glanceSource,
  pinCertificates,
  withAbsolutePaths,
  type GlanceFeedConfig,
  type PinnedGlanceCertificate,
} from './glance-config.js';

export { DEFAULT_VERSION_PATTERN, FEED_NAME, versionOf } from './common.js';

/** A feed reading files from a vendor mirror (an HTTP(S) folder or a local one). */
export const mirrorFeedSchema = z
  .strictObject({
    ...commonFeedFields,
    kind: z.enum(['checksums', 'sigstore']),
    /** `https://mirror.example/images/` or a local folder. */
    url: z
      .string({ error: 'a checksums or sigstore feed names its mirror (url: an http(s) folder or a local folder)' })
      .min(1)
      .max(4096),
    /** checksums: the checksum file's name in `url`. */
    checksums: z.string().min(1).max(255).optional(),
    /** checksums: the detached signature's name; absent when the checksum file is clear-signed. */
    signature: z.string().min(1).max(255).optional(),
    /** checksums: the vendor's OpenPGP public keys (files, armored or binary, or inline armored text). */
    openpgpKeys: z.array(z.string().min(1)).min(1).optional(),
    /** sigstore: the vendor's public keys (PEM files or inline PEM). */
    publicKeys: z.array(z.string().min(1)).min(1).optional(),
    /** sigstore: the bundle beside each artifact is `<file><bundleSuffix>`. */
    bundleSuffix: z.string().min(1).max(64).default('.sigstore.json'),
    /** A glob on file names: which of the published files are this product. */
    match: z.string().min(1).max(255).default('*'),
    diskFormat: z.enum(DISK_FORMATS).optional(),
    containerFormat: z.enum(CONTAINER_FORMATS).default('bare'),
    properties: z.record(z.string(), z.string()).default({}),
  })
  .superRefine((f, ctx) => {
    if (f.kind === 'checksums') {
      if (!f.checksums)
        ctx.addIssue({ code: 'custom', path: ['checksums'], message: 'a checksums feed names its checksum file' });
      if (!f.openpgpKeys)
        ctx.addIssue({
          code: 'custom',
          path: ['openpgpKeys'],
          message: 'a checksums feed pins the vendor OpenPGP key(s)',
        });
    }
    if (f.kind === 'sigstore' && !f.publicKeys) {
      ctx.addIssue({ code: 'custom', path: ['publicKeys'], message: 'a sigstore feed pins the vendor public key(s)' });
    }
    checkVersionPattern(f.versionPattern, ctx);
  });

export const feedSchema = z.discriminatedUnion('kind', [mirrorFeedSchema, glanceFeedSchema, registryFeedSchema]);

export type FeedInput = z.input<typeof feedSchema>;
export type FeedConfig = z.output<typeof feedSchema>;
export type MirrorFeedConfig = z.output<typeof mirrorFeedSchema>;
export type { GlanceFeedConfig, RegistryFeedConfig };

/** What was pinned when the feed was declared. */
export interface FeedTrust {
  openpgp: Array<{ fingerprint: string; key: string /* base64 of the binary packets */ }>;
  sigstore: Array<{ keyId: string; pem: string }>;
  /** glance: the vendor image-signing certificates, by uuid (absent in feeds declared before the glance kind). */
  glance?: PinnedGlanceCertificate[];
}

export interface Feed<C extends FeedConfig = FeedConfig> {
  config: C;
  trust: FeedTrust;
  addedAt: string;
}

function readKeyMaterial(spec: string, baseDir: string, what: string): Buffer {
  if (spec.startsWith('-----BEGIN')) return Buffer.from(spec, 'utf8');
  const file = path.resolve(baseDir, spec);
  try {
    const st = fs.statSync(file);
    if (st.size > 1024 * 1024) throw new EcluseError('E_INPUT', `${what} ${file} is larger than 1 MiB`);
    return fs.readFileSync(file);
  } catch (e) {
    if (e instanceof EcluseError) throw e;
    throw new EcluseError('E_NOT_FOUND', `cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

/** Reads and pins the trust material a feed names (paths relative to `baseDir`). */
export function pinTrust(config: FeedConfig, baseDir: string): FeedTrust {
  if (config.kind === 'glance') return { openpgp: [], sigstore: [], glance: pinCertificates(config, baseDir) };
  const openpgp = (config.kind === 'registry' ? [] : (config.openpgpKeys ?? [])).map((spec) => {
    const { packets, fingerprint } = readOpenPgpKey(readKeyMaterial(spec, baseDir, 'OpenPGP key'));
    return { fingerprint, key: packets.toString('base64') };
  });
  const sigstore = (config.publicKeys ?? []).map((spec) => {
    let key: crypto.KeyObject;
    try {
      key = crypto.createPublicKey(readKeyMaterial(spec, baseDir, 'public key'));
    } catch (e) {
      if (e instanceof EcluseError) throw e;
      throw new EcluseError('E_KEY', `feed ${config.name}: ${spec} is not a public key (${(e as Error).message})`);
    }
    return { keyId: keyIdOf(key), pem: key.export({ type: 'spki', format: 'pem' }).toString() };
  });
  return { openpgp, sigstore };
}

function describe(issue: z.core.$ZodIssue | undefined): string {
  return issue ? `${issue.path.join('.') || '(top)'}: ${issue.message}` : 'invalid';
}

export function parseFeed(raw: unknown, where: string): FeedConfig {
  const r = feedSchema.safeParse(raw);
  if (!r.success) throw new EcluseError('E_INPUT', `${where}: ${describe(r.error.issues[0])}`);
  return r.data;
}

/** A feed as declared now: its config (paths it reads later made absolute) and its trust material pinned. */
export function declareFeed(config: FeedConfig, baseDir: string, addedAt = isoSeconds()): Feed {
  const stored = config.kind === 'glance' ? withAbsolutePaths(config, baseDir) : config;
  return { config: stored, trust: pinTrust(config, baseDir), addedAt };
}

/** Where a feed reads from: a mirror's URL or folder, or a Glance endpoint. */
export const feedSource = (c: FeedConfig): string => (c.kind === 'glance' ? glanceSource(c) : c.url);

const fileSchema = z.strictObject({ feeds: z.array(z.unknown()).max(1000) });

/** Reads a feeds file (YAML or JSON: `feeds: [...]`); key files are relative to the file's folder. */
export function readFeedsFile(file: string): Feed[] {
  const raw = readOperatorFile(file, 1024 * 1024);
  const top = fileSchema.safeParse(raw);
  if (!top.success) throw new EcluseError('E_INPUT', `${file}: ${describe(top.error.issues[0])}`);
  const names = new Set<string>();
  const now = isoSeconds();
  return top.data.feeds.map((f, i) => {
    const config = parseFeed(f, `${file}: feeds.${i}`);
    if (names.has(config.name)) throw new EcluseError('E_INPUT', `${file}: two feeds are named ${config.name}`);
    names.add(config.name);
    return declareFeed(config, path.dirname(path.resolve(file)), now);
  });
}

export function saveFeed(db: RelayDb, feed: Feed, replace: boolean): void {
  const exists = db.prepare('SELECT 1 FROM feeds WHERE name = ?').get(feed.config.name);
  if (exists && !replace) {
    throw new EcluseError('E_INPUT', `a feed named ${feed.config.name} already exists (remove it first)`);
  }
  db.prepare(
    `INSERT INTO feeds (name, config, trust, added_at) VALUES (?, ?, ?, ?)
     ON CONFLICT(name) DO UPDATE SET config = excluded.config, trust = excluded.trust, added_at = excluded.added_at`,
  ).run(feed.config.name, JSON.stringify(feed.config), JSON.stringify(feed.trust), feed.addedAt);
}

/** Replaces the whole set of feeds with those of a file: feeds the file does not name are removed. */
export function applyFeeds(db: RelayDb, feeds: Feed[]): { added: string[]; updated: string[]; removed: string[] } {
  const before = new Set(listFeeds(db).map((f) => f.config.name));
  const after = new Set(feeds.map((f) => f.config.name));
  db.transaction(() => {
    for (const name of before) if (!after.has(name)) db.prepare('DELETE FROM feeds WHERE name = ?').run(name);
    for (const f of feeds) saveFeed(db, f, true);
  })();
  return {
    added: [...after].filter((n) => !before.has(n)),
    updated: [...after].filter((n) => before.has(n)),
    removed: [...before].filter((n) => !after.has(n)),
  };
}

/** A row of `feeds`: the declared config (checked against the feed schema) and the trust pinned when declared. */
const feedRows = storedRows(
  'feeds',
  z.object({
    name: z.string(),
    config: jsonText(feedSchema),
    trust: jsonText(
      z.looseObject({
        openpgp: z.array(z.object({ fingerprint: z.string(), key: z.string() })),
        sigstore: z.array(z.object({ keyId: z.string(), pem: z.string() })),
        glance: z.array(z.looseObject({ uuid: z.string() })).optional(),
      }),
    ),
    added_at: z.string(),
  }),
  'declare the feed again (ecluse relay feed add) to pin its trust anew',
);

export function listFeeds(db: RelayDb): Feed[] {
  return feedRows.all(db, 'SELECT * FROM feeds ORDER BY name').map((r) => ({
    config: r.config,
    trust: r.trust as FeedTrust,
    addedAt: r.added_at,
  }));
}

export function removeFeed(db: RelayDb, name: string): void {
  const r = db.prepare('DELETE FROM feeds WHERE name = ?').run(name);
  if (r.changes === 0) throw new EcluseError('E_NOT_FOUND', `no feed named ${name}`);
}
