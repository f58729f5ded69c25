/**
 * A bundle over several media read together (`ecluse verify|import A B C`): FORMAT.md section 2, "A bundle over
 * several media". Each medium's bundle folder is read as strictly as a single medium's; every medium must carry the
 * same signatures, certificates and trust files (the signed statement is then the same), and the volumes are taken
 * from whichever medium holds them, in the order the media were given. Nothing here trusts a byte: the signatures,
 * the statement and every volume are verified afterwards exactly as for one medium, volumes read where they lie
 * (once, no copy).
 */
import { EcluseError } from './errors.js';
import { chooseBundle, findBundles, readBundleFiles, type BundleFiles } from './bundle-files.js';
import { checkId } from './check-ids.js';

const list = (media: readonly string[]) => media.join(', ');

/** The bundle to work on across `media`: the one given, or the only one found on any of them. */
async function chooseAcross(media: readonly string[], wanted: string | undefined): Promise<string> {
  const ids = new Set<string>();
  for (const m of media) for (const id of await findBundles(m)) ids.add(id);
  if (wanted !== undefined) {
    if (!ids.has(wanted)) throw new EcluseError('E_NO_BUNDLE', `bundle ${wanted} is on none of ${list(media)}`);
    return wanted;
  }
  if (ids.size === 0) {
    throw new EcluseError('E_NO_BUNDLE', `no écluse bundle on ${list(media)} (looked in ecluse/bundles/ of each)`);
  }
  if (ids.size > 1) {
    throw new EcluseError(
      'E_TOO_MANY_BUNDLES',
      `${ids.size} bundles on ${list(media)}; choose one with --bundle (${[...ids].sort().join(', ')})`,
    );
  }
  return [...ids][0] as string;
}

/** readBundleFiles, with the bundle id in the context of any refusal (the audit names the bundle). */
function readNaming(medium: string, bundleId: string): Promise<BundleFiles> {
  return readBundleFiles(medium, bundleId).catch((e: unknown) => {
    if (e instanceof EcluseError) e.context.bundleId ??= bundleId;
    throw e;
  });
}

function sameFiles(a: BundleFiles, b: BundleFiles): boolean {
  const pairs = (f: BundleFiles) =>
    [
      ...f.signatures.map((s) => [`signatures/${s.name}`, s.bytes] as const),
      ...[...f.certificates].map(([k, v]) => [`certificates/${k}`, v] as const),
      ...[...f.rootDocuments].map(([k, v]) => [`trust/${k}`, v] as const),
      ...(f.revocations ? [['trust/revocations', f.revocations] as const] : []),
    ].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
  const pa = pairs(a);
  const pb = pairs(b);
  return pa.length === pb.length && pa.every(([name, bytes], i) => pb[i]?.[0] === name && pb[i][1].equals(bytes));
}

/**
 * Reads one bundle from one medium, or gathers it from several: `files.volumeFiles` is then every volume found on any
 * of them and `files.volumeAt` says where each lies (the first medium given that holds it); `files.paths` are those
 * of the first medium holding the bundle.
 */
export async function readBundleAcross(media: readonly string[], wanted?: string): Promise<BundleFiles> {
  const first = media[0];
  if (first === undefined) throw new EcluseError('E_USAGE', 'no media folder given');
  if (media.length === 1) {
    const id = await chooseBundle(first, wanted);
    return readNaming(first, id);
  }
  const bundleId = await chooseAcross(media, wanted);
  const parts: Array<{ medium: string; files: BundleFiles }> = [];
  for (const m of media) {
    if (!(await findBundles(m)).includes(bundleId)) continue;
    parts.push({ medium: m, files: await readNaming(m, bundleId) });
  }
  const base = parts[0] as { medium: string; files: BundleFiles };
  for (const p of parts.slice(1)) {
    if (!sameFiles(base.files, p.files)) {
      throw new EcluseError(
        'E_FORMAT',
        `bundle ${bundleId} on ${p.medium} carries other signatures, certificates or trust files than on ${base.medium}: these media are not of one export; give only the media of one bundle`,
        { check: checkId('media-set'), bundleId },
      );
    }
  }
  const volumeAt = new Map<string, string>();
  for (const p of parts) {
    for (const [name, at] of p.files.volumeAt) if (!volumeAt.has(name)) volumeAt.set(name, at);
  }
  return { ...base.files, volumeFiles: [...volumeAt.keys()].sort(), volumeAt };
}
