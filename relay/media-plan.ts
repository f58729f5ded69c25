/**
 * How a bundle lands on media: the volume capacity a media size leaves once the bundle files and the margin are
 * counted (docs/FORMAT.md 12), which volumes go on which medium (contiguous, in order, at least one each), and the
 * free space each medium needs and has. `--plan` and `export` both use this, so they agree on every number.
 */
import fs from 'node:fs';
import path from 'node:path';
import { EcluseError } from '../sneakernet/errors.js';
import { MIN_VOLUME_BYTES, type PlannedVolume } from '../sneakernet/volume-plan.js';
import { bundlesDir } from '../sneakernet/layout.js';

export interface MediumPlan {
  medium: number;
  /** Where it is mounted (null in a plan made without `--to`). */
  path: string | null;
  volumes: string[];
  bytes: number;
  /** Free space the medium must have: its volumes (rounded up to blocks) + `bundleFiles` + `margin`. */
  freeSpaceNeeded: number;
  /**
   * An upper bound of the bytes of the signatures (each carrying the statement), certificates and trust files, each
   * rounded up to the block (bundleFilesEstimate).
   */
  bundleFiles: number;
  /** Directories and the block rounding of the small files: 16 filesystem blocks. */
  margin: number;
  /** Free space measured on the medium (counting what abandoned `.partial-*` folders hold), or null without `--to`. */
  freeSpace: number | null;
  /** Abandoned `.partial-*` folders found there; `export` removes them before writing. */
  abandoned: string[];
}

/** Filesystem block assumed when no medium is given. */
const DEFAULT_BLOCK = 4096;

/**
 * Bytes a signature file takes besides its payload's base64: the JSON members and the key id twice (about 330 bytes,
 * docs/FORMAT.md 3.1) and the base64 of an RSA signature of up to 16384 bits (2 732 characters).
 */
export const SIGNATURE_FILE_OVERHEAD = 3 * 1024;
/**
 * The least a certificate counts (all it counts when the plan is not given its size: a plan without `--signer`): the
 * reference ceremony's RSA-3072 certificates take under 3 KiB of PEM, with a 255-character name.
 */
export const CERTIFICATE_ALLOWANCE = 4 * 1024;
/**
 * The least the trust files count together (all they count when the plan is not given them): a revocation list, a
 * root rotation. Floors, so that a plan without `--signer` and the export agree whenever the files are that small.
 */
export const TRUST_ALLOWANCE = 16 * 1024;

/** What the bundle files of each medium are made of (every medium carries all of them). */
export interface BundleFilesInput {
  /** Signers: one signature file and one certificate each. */
  signers: number;
  /** The statement's length in bytes: each signature file carries it in base64 (docs/FORMAT.md 3.1). */
  statementBytes: number;
  /** Each signer's certificate file, when known (each counts at least CERTIFICATE_ALLOWANCE). */
  certificateBytes?: readonly number[] | undefined;
  /** Each trust file (revocation list, root documents), when known (together at least TRUST_ALLOWANCE). */
  trustFileBytes?: readonly number[] | undefined;
}

const roundUp = (n: number, b: number) => Math.ceil(n / b) * b;

/**
 * An upper bound of the bytes the bundle files besides volumes take on one medium, each file rounded up to the
 * filesystem block `block` (docs/FORMAT.md 12):
 *
 *   signers × ⌈SIGNATURE_FILE_OVERHEAD + 4⌈statementBytes / 3⌉⌉ + Σ ⌈max(certificate, CERTIFICATE_ALLOWANCE)⌉
 *     + max(Σ ⌈trust file⌉, ⌈TRUST_ALLOWANCE⌉)          (⌈x⌉: rounded up to the block)
 *
 * The statement grows with the artifacts (their names, properties, evidence, deltas, OCI blobs), their chunk lists
 * (4.11: 64 hex characters a chunk) and the volumes and their entries; relay/bundle-statement.ts gives its length.
 */
export function bundleFilesEstimate(f: BundleFilesInput, block: number = DEFAULT_BLOCK): number {
  const signature = roundUp(SIGNATURE_FILE_OVERHEAD + 4 * Math.ceil(f.statementBytes / 3), block);
  let certificates = 0;
  for (let k = 0; k < f.signers; k++) {
    certificates += roundUp(Math.max(f.certificateBytes?.[k] ?? 0, CERTIFICATE_ALLOWANCE), block);
  }
  const trust = Math.max(
    (f.trustFileBytes ?? []).reduce((n, b) => n + roundUp(b, block), 0),
    roundUp(TRUST_ALLOWANCE, block),
  );
  return f.signers * signature + certificates + trust;
}

/**
 * A statement length for a caller that cannot build the statement: what the estimate gave before 4.11 for the
 * artifacts, 8 KiB of chunk list each and 1 KiB per volume and per entry. Not a bound for artifacts carrying large
 * properties, evidence or deltas; relay/export-plan.ts gives the statement's exact length instead.
 */
export const roughStatementBytes = (artifacts: number, volumes: readonly PlannedVolume[]) =>
  4 * 1024 + artifacts * 16 * 1024 + volumes.reduce((n, v) => n + 1024 * (1 + v.entries.length), 0);
const MARGIN_BLOCKS = 16;

/** Abandoned `.partial-*` folders on a medium (left by an export that was killed). */
export function abandonedPartials(media: string): string[] {
  const dir = bundlesDir(media);
  try {
    return fs
      .readdirSync(dir)
      .filter((n) => n.startsWith('.partial-'))
      .map((n) => path.join(dir, n));
  } catch {
    return [];
  }
}

function duBytes(p: string): number {
  let n = 0;
  for (const e of fs.readdirSync(p, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += fs.statSync(path.join(e.parentPath, e.name)).size;
  }
  return n;
}

/** Distribution of `volumes` over `media`: contiguous, in order, at least one each. */
export function shareOf(volumes: number, media: number): (i: number) => number {
  const share = (k: number) => Math.floor((k * volumes) / media);
  return (i) => {
    for (let k = 0; k < media; k++) if (i >= share(k) && i < share(k + 1)) return k;
    return media - 1;
  };
}

export interface Placement {
  capacity: number;
  volumes: PlannedVolume[];
  media: MediumPlan[];
  fits: boolean;
  refusals: EcluseError[];
}

export async function placeOnMedia(o: {
  media: string[];
  mediaBytes: number;
  signers: number;
  artifacts: number;
  volumes: (capacity: number) => PlannedVolume[];
  /** The statement's length for these volumes (relay/bundle-statement.ts); else roughStatementBytes. */
  statementBytes?: (volumes: readonly PlannedVolume[]) => number;
  /** Each signer's certificate file, when known (BundleFilesInput). */
  certificateBytes?: readonly number[] | undefined;
  /** Each trust file carried, when known (BundleFilesInput). */
  trustFileBytes?: readonly number[] | undefined;
}): Promise<Placement> {
  if (new Set(o.media.map((m) => path.resolve(m))).size !== o.media.length) {
    throw new EcluseError('E_USAGE', 'the same media was given twice');
  }
  const stats: Array<{ bsize: number; free: number }> = [];
  for (const m of o.media) {
    const st = await fs.promises.stat(m).catch(() => null);
    // Only the last folder of the path may be missing (a folder standing for a stick, which the writer makes); a
    // missing parent is an unmounted or mistyped media path (/media/usb0/bundle, /nonexistent/usb), and writing there
    // would fill the system disk instead of a stick.
    const parent = path.dirname(path.resolve(m));
    const parentSt = st === null ? await fs.promises.stat(parent).catch(() => null) : null;
    if (st !== null ? !st.isDirectory() : !parentSt?.isDirectory()) {
      throw new EcluseError(
        'E_NOT_FOUND',
        st !== null
          ? `${m} is not a folder: give the folder where the media is mounted`
          : `${m} does not exist, nor does ${parent}: mount the media there (or create the folder) and run the export again`,
        { check: 'media' },
      );
    }
    const fsStat = await fs.promises.statfs(st !== null ? m : parent);
    stats.push({ bsize: fsStat.bsize, free: fsStat.bavail * fsStat.bsize });
  }
  const block = Math.max(DEFAULT_BLOCK, ...stats.map((s) => s.bsize));
  const margin = MARGIN_BLOCKS * block;
  const statementBytes = o.statementBytes ?? ((v) => roughStatementBytes(o.artifacts, v));
  const filesFor = (vols: readonly PlannedVolume[]) =>
    bundleFilesEstimate(
      {
        signers: o.signers,
        statementBytes: statementBytes(vols),
        certificateBytes: o.certificateBytes,
        trustFileBytes: o.trustFileBytes,
      },
      block,
    );
  // The bundle files grow with the volumes (the statement lists them), and the volumes with less room for them. So:
  // the estimate for no volumes gives a capacity, the volumes planned at that capacity give the estimate again, and
  // while it is larger than the one the capacity came from, the capacity shrinks to it and the volumes are planned
  // anew. The estimate only grows, and is bounded (the capacity must stay above MIN_VOLUME_BYTES, the volumes within
  // their limit): it ends at one that counts the very volumes planned with it, usually at the first or second turn.
  let bundleFiles = filesFor([]);
  let capacity: number;
  let volumes: PlannedVolume[];
  for (;;) {
    // The last block of a volume may be a partial one: the volume takes a whole block on the medium.
    capacity = Math.floor((o.mediaBytes - bundleFiles - margin - block) / 512) * 512;
    if (capacity < MIN_VOLUME_BYTES) {
      throw new EcluseError(
        'E_USAGE',
        `--media-size ${o.mediaBytes} leaves ${Math.max(capacity, 0)} bytes for volumes once the bundle files (${bundleFiles}) and the margin (${margin + block}) are counted: give at least ${MIN_VOLUME_BYTES + bundleFiles + margin + block} bytes`,
      );
    }
    volumes = o.volumes(capacity);
    const needed = filesFor(volumes);
    if (needed <= bundleFiles) break;
    bundleFiles = needed;
  }
  const medium = (k: number, vols: PlannedVolume[], where: string | null, free: number | null): MediumPlan => {
    const abandoned = where ? abandonedPartials(where) : [];
    return {
      medium: k + 1,
      path: where,
      volumes: vols.map((v) => v.name),
      bytes: vols.reduce((x, v) => x + v.size, 0),
      freeSpaceNeeded: vols.reduce((x, v) => x + roundUp(v.size, block), 0) + bundleFiles + margin,
      bundleFiles,
      margin,
      freeSpace: free === null ? null : free + abandoned.reduce((n, p) => n + duBytes(p), 0),
      abandoned,
    };
  };
  const layout = (n: number, where: string[]): MediumPlan[] => {
    const on = shareOf(volumes.length, n);
    return Array.from({ length: n }, (_, k) =>
      medium(
        k,
        volumes.filter((_v, i) => on(i) === k),
        where[k] ?? null,
        stats[k]?.free ?? null,
      ),
    );
  };
  const refusals: EcluseError[] = [];
  // A resend keeps the volumes as they were signed: one larger than this media size leaves cannot be re-split.
  const oversized = volumes.find((v) => v.size > capacity);
  if (oversized) {
    refusals.push(
      new EcluseError(
        'E_NO_SPACE',
        `${oversized.name} is ${oversized.size} bytes, more than the ${capacity} bytes --media-size ${o.mediaBytes} leaves for a volume; a resent bundle keeps its signed volumes: use media of at least ${roundUp(oversized.size, block) + bundleFiles + margin} bytes, or export --replace to split it again`,
        { check: 'media-size' },
      ),
    );
  }
  const fits = volumes.every((v) => roundUp(v.size, block) + bundleFiles + margin <= o.mediaBytes);
  if (o.media.length > 0) {
    if (o.media.length > volumes.length) {
      throw new EcluseError(
        'E_USAGE',
        `the bundle has ${volumes.length} volume(s) of at most ${capacity} bytes: give at most ${volumes.length} --to (or a smaller --media-size)`,
      );
    }
    const media = layout(o.media.length, o.media);
    for (const m of media) {
      if (m.freeSpace !== null && m.freeSpace < m.freeSpaceNeeded) {
        refusals.push(
          new EcluseError(
            'E_NO_SPACE',
            `${m.path ?? ''} has ${m.freeSpace} bytes free; its share of the bundle needs ${m.freeSpaceNeeded} (volumes ${m.freeSpaceNeeded - m.bundleFiles - m.margin} + bundle files ${m.bundleFiles} + margin ${m.margin}): use a larger medium, or a smaller --media-size with one more --to`,
            { check: 'free-space' },
          ),
        );
      }
    }
    return { capacity, volumes, media, fits, refusals };
  }
  let media = layout(volumes.length, []);
  for (let n = 1; n <= volumes.length && fits; n++) {
    const l = layout(n, []);
    if (l.every((m) => m.freeSpaceNeeded <= o.mediaBytes)) {
      media = l;
      break;
    }
  }
  return { capacity, volumes, media, fits, refusals };
}
