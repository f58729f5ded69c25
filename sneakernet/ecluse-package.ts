/**
 * écluse's own package as a bundle artifact (docs/FORMAT.md 4.10, an addition to v1): a Debian package of the import
 * station itself, named `ecluse`, for one architecture. Its bytes travel like any artifact's (content-addressed volume
 * entries, SHA-256 and SHA-512 signed); the import station hands them to the privileged installer instead of the
 * image store. The schema keeps the members every artifact has (`diskFormat` raw, `containerFormat` bare, no
 * properties), so that one shape reads them all.
 */
import { z } from 'zod';

/** The Debian package name the artifact must carry (`Package:` of its control file). */
export const ECLUSE_PACKAGE_NAME = 'ecluse';
/** The artifact type (FORMAT.md 4.10). */
export const ECLUSE_PACKAGE_TYPE = 'ecluse-package';
/** The architectures an import station runs on, as Debian names them. */
export const PACKAGE_ARCHES = ['amd64', 'arm64'] as const;
export type PackageArch = (typeof PACKAGE_ARCHES)[number];

/** `package`: what the control file says of the platform, signed with the artifact. */
export const packageFieldsSchema = z.strictObject({
  /** The package's `Architecture`. */
  arch: z.enum(PACKAGE_ARCHES),
  /**
   * Informative: the `Depends:` range on nodejs the native addons were built for, e.g. `>= 20.19, << 21` (empty when
   * the package declares none). Printable ASCII only, as dpkg writes it.
   */
  node: z
    .string()
    .max(255)
    .regex(/^[\x20-\x7e]*$/, 'printable ASCII'),
});
export type PackageFields = z.infer<typeof packageFieldsSchema>;

/** The Debian name of the machine this process runs on (`process.arch`), or null for one no package is built for. */
export function stationArch(arch: string = process.arch): PackageArch | null {
  if (arch === 'x64') return 'amd64';
  if (arch === 'arm64') return 'arm64';
  return null;
}

/**
 * The nodejs range of a `Depends:` field: `nodejs (>= 20.19), nodejs (<< 21)` gives `>= 20.19, << 21`; alternatives
 * and other packages are left out. Empty when nodejs is not named.
 */
export function nodeRangeOf(depends: string): string {
  const ranges: string[] = [];
  for (const clause of depends.split(',')) {
    for (const alt of clause.split('|')) {
      const m = /^\s*nodejs(?::[a-z0-9]+)?\s*(?:\(\s*([<>=]{1,2})\s*([^)\s]+)\s*\))?\s*$/.exec(alt);
      if (m?.[1] && m[2]) ranges.push(`${m[1]} ${m[2]}`);
    }
  }
  return ranges.join(', ');
}
