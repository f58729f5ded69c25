/**
 * `ecluse relay add FILE.deb --type ecluse-package` (docs/FORMAT.md 4.10): écluse's own package enters the catalog like
 * any artifact (copied into the content-addressed store while its digests are computed), its name, version,
 * architecture and Node range read from the package itself with `dpkg-deb -f`. A file that is not a Debian package,
 * or a package not named `ecluse`, is refused; `--name` and `--version`, when given, must say what the package says.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { EcluseError } from '../sneakernet/errors.js';
import { assertReadableFile } from '../sneakernet/input-file.js';
import { readDebFields } from '../sneakernet/deb-fields.js';
import {
  ECLUSE_PACKAGE_NAME,
  nodeRangeOf,
  packageFieldsSchema,
  PACKAGE_ARCHES,
  type PackageFields,
} from '../sneakernet/ecluse-package.js';
import { ecluseArtifactSchema } from '../sneakernet/statement.js';
import { copyHashing, recordBlob, type AddResult } from './add.js';
import type { RelayHome } from './catalog.js';

export interface AddPackageOptions {
  file: string;
  /** As the operator typed them, if at all: each must equal the package's own. */
  name?: string;
  version?: string;
  vendor: string | null;
  onProgress?: (bytes: number, total: number) => void;
}

export interface AddPackageResult extends AddResult {
  package: PackageFields;
}

/** What the package says of itself, checked against what the statement can carry and against the operator's words. */
export async function packageIdentity(
  file: string,
  o: Pick<AddPackageOptions, 'name' | 'version'>,
): Promise<{ version: string; package: PackageFields }> {
  const f = await readDebFields(file, file);
  if (f.package !== ECLUSE_PACKAGE_NAME) {
    throw new EcluseError(
      'E_INPUT',
      `${file} is the Debian package "${f.package}", not écluse's own ("${ECLUSE_PACKAGE_NAME}"): only écluse's package is an ecluse-package artifact (add other files as VM images, without --type)`,
      { check: 'input-file' },
    );
  }
  if (o.name !== undefined && o.name !== f.package) {
    throw new EcluseError('E_USAGE', `--name ${o.name} is not the package's name (${f.package}): leave --name out`);
  }
  if (o.version !== undefined && o.version !== f.version) {
    throw new EcluseError(
      'E_USAGE',
      `--version ${o.version} is not the package's version (${f.version}): leave --version out`,
    );
  }
  const arch = f.architecture;
  if (!(PACKAGE_ARCHES as readonly string[]).includes(arch)) {
    throw new EcluseError(
      'E_INPUT',
      `${file} is built for ${arch}; an import station runs on ${PACKAGE_ARCHES.join(' or ')}: build the package for one of them`,
      { check: 'input-file' },
    );
  }
  const fields = packageFieldsSchema.safeParse({ arch, node: nodeRangeOf(f.depends) });
  const version = ecluseArtifactSchema.shape.version.safeParse(f.version);
  if (!fields.success || !version.success) {
    throw new EcluseError(
      'E_INPUT',
      `${file}: its version "${f.version}" or nodejs dependency cannot be carried in a bundle (letters, digits and . _ + : ~ - only)`,
      { check: 'input-file' },
    );
  }
  return { version: version.data, package: fields.data };
}

export async function addPackage(home: RelayHome, o: AddPackageOptions): Promise<AddPackageResult> {
  const st = await assertReadableFile(o.file, 'package file');
  const id = await packageIdentity(o.file, o);
  const tmp = path.join(home.blobs, `.incoming-${randomBytes(8).toString('hex')}`);
  let copied: Awaited<ReturnType<typeof copyHashing>>;
  try {
    copied = await copyHashing(o.file, tmp, (n) => o.onProgress?.(n, st.size));
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw new EcluseError('E_IO', `copying ${o.file} failed: ${(e as Error).message}`, {}, { cause: e });
  }
  const r = await recordBlob(home, {
    tmp,
    size: copied.size,
    chunks: copied.chunks,
    sha256: copied.digests.sha256,
    sha512: copied.digests.sha512,
    md5: copied.digests.md5,
    name: ECLUSE_PACKAGE_NAME,
    version: id.version,
    diskFormat: 'raw',
    containerFormat: 'bare',
    properties: {},
    vendor: o.vendor,
    source: path.basename(o.file),
    package: id.package,
  });
  if (r.artifact.type !== 'ecluse-package') {
    throw new EcluseError(
      'E_INPUT',
      `${r.artifact.name} ${r.artifact.version} is already in the catalog as a ${r.artifact.type}: remove it first (ecluse relay remove ${r.artifact.name}@${r.artifact.version})`,
    );
  }
  return { ...r, package: id.package };
}
