/**
 * Which volume is damaged, when a chunk did not match its signed list (docs/FORMAT.md 4.11, step 7h). A volume whose
 * data the chunk lists prove is not hashed as it is read (7i checks its layout only), so a damaged byte in its data is
 * first seen as a bad chunk of an artifact. But the operator acts on volumes (a stick to discard, a volume to write
 * again), and a chunk may span several: so, on the way to the refusal only, the unhashed volumes holding the bad chunk
 * are read again and hashed, and the first that is not the signed one is refused as 7i always refused it (E_DIGEST,
 * `volume-digest`, naming the volume and the folder it was read from), the bad chunk named after it. When each of
 * them is the signed volume, the signed chunk list itself does not describe the signed bytes: the chunk's refusal
 * stands.
 */
import path from 'node:path';
import { EcluseError } from '../sneakernet/errors.js';
import { fileSha256 } from '../sneakernet/volume-layout.js';
import { volumeDigestError } from '../sneakernet/volume-reader.js';
import type { Volume } from '../sneakernet/statement.js';

export interface VolumeFiles {
  /** The volumes to read again when they hold a bad chunk: those not hashed as they were read. */
  volumes: readonly Volume[];
  /** Where each volume was read from (by name); a volume not in it is in `folder`. */
  fileOf: (name: string) => string;
}

/**
 * The refusal the operator should see for `err`: a volume's, when `err` is a bad chunk read from a volume that is not
 * the signed one; `err` itself otherwise (also when a volume cannot be read again: the chunk's refusal is true).
 */
export async function refusalNamingTheVolume(err: EcluseError, files: VolumeFiles): Promise<EcluseError> {
  if (err.code !== 'E_DIGEST' || err.context.check !== 'artifact-chunk') return err;
  const named = typeof err.context.volume === 'string' ? err.context.volume.split(',') : [];
  for (const volume of files.volumes.filter((v) => named.includes(v.name))) {
    const file = files.fileOf(volume.name);
    let sha256: string;
    try {
      sha256 = await fileSha256(file);
    } catch {
      return err;
    }
    if (sha256 !== volume.sha256) {
      // 7i's refusal, extended with the chunk that showed it (the first bad one, as 7h names it).
      const refusal = volumeDigestError(volume, file);
      const badChunk = typeof err.context.badChunk === 'string' ? err.context.badChunk : null;
      if (!badChunk) return refusal;
      return new EcluseError(
        refusal.code,
        `${refusal.message}; the first bad chunk: ${badChunk}`,
        { ...refusal.context, chunk: err.context.chunk, bytes: err.context.bytes },
        { cause: err },
      );
    }
  }
  return err;
}

/** The file of each volume of a bundle read from `folder` (or from where each was found). */
export function volumeFiles(
  volumes: readonly Volume[],
  folder: string,
  found: ReadonlyMap<string, string>,
): VolumeFiles {
  return { volumes, fileOf: (name) => found.get(name) ?? path.join(folder, name) };
}
