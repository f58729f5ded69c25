/**
 * The ecluse-package artifact (docs/FORMAT.md 4.10) in the statement: its closed schema, at most one per bundle, and
 * the helpers that derive its members from a control file and the machine.
 */
import { describe, expect, it } from 'vitest';
import { nodeRangeOf, stationArch } from '../../sneakernet/ecluse-package.js';
import { encodeStatement, parseStatement, type EcluseArtifact, type Statement } from '../../sneakernet/statement.js';
import { clone, expectRefusal, makeArtifact, makeStatement, sha256, sha512 } from './fixtures.js';

const DEB = Buffer.from('!<arch>\n a package stands here');

function pkg(over: Partial<EcluseArtifact> = {}): EcluseArtifact {
  return {
    name: 'ecluse',
    version: '0.2.0+site1',
    type: 'ecluse-package',
    size: DEB.length,
    sha256: sha256(DEB),
    sha512: sha512(DEB),
    diskFormat: 'raw',
    containerFormat: 'bare',
    properties: {},
    provenance: { vendor: null, source: 'ecluse_0.2.0+site1_amd64.deb', addedAt: '2025-01-01T00:00:00Z' },
    package: { arch: 'amd64', node: '>= 20.19, << 21' },
    ...over,
  };
}

/** A statement carrying an image (1000 bytes) and then the package, each whole in vol-0001. */
function withPackage(artifacts = [makeArtifact(0, Buffer.alloc(1000, 1)), pkg()]): Statement {
  return makeStatement(artifacts, [
    {
      name: 'vol-0001.tar',
      size: 1024 + artifacts.reduce((n, a) => n + 512 + Math.ceil(a.size / 512) * 512, 0),
      sha256: sha256('vol 1'),
      entries: artifacts.map((a, i) => ({ path: `blobs/sha256/${a.sha256}`, artifact: i, offset: 0, size: a.size })),
    },
  ]);
}

function edited(f: (a: Record<string, unknown>) => void): Buffer {
  const s = clone(withPackage());
  f(s.predicate.artifacts[1] as unknown as Record<string, unknown>);
  return encodeStatement(s);
}

describe('the ecluse-package artifact in the statement', () => {
  it('is read beside a VM image, unchanged', () => {
    const s = withPackage();
    expect(parseStatement(encodeStatement(s))).toEqual(s);
  });

  it('refuses another name, properties, a Glance format, a delta, an unknown architecture, missing package', async () => {
    await expectRefusal(() => parseStatement(edited((a) => (a.name = 'ecluse-evil'))), 'E_FORMAT', 'name');
    await expectRefusal(() => parseStatement(edited((a) => (a.properties = { x: 'y' }))), 'E_FORMAT', 'properties');
    await expectRefusal(() => parseStatement(edited((a) => (a.diskFormat = 'qcow2'))), 'E_FORMAT', 'diskFormat');
    await expectRefusal(() => parseStatement(edited((a) => (a.md5 = '0'.repeat(32)))), 'E_FORMAT', 'md5');
    await expectRefusal(
      () => parseStatement(edited((a) => (a.package = { arch: 'i386', node: '' }))),
      'E_FORMAT',
      'package.arch',
    );
    await expectRefusal(() => parseStatement(edited((a) => delete a.package)), 'E_FORMAT', 'package');
  });

  it('refuses two of them in one bundle', async () => {
    const other = Buffer.from('another package');
    const second = pkg({ version: '0.3.0', size: other.length, sha256: sha256(other), sha512: sha512(other) });
    await expectRefusal(
      () => parseStatement(encodeStatement(withPackage([pkg(), second]))),
      'E_FORMAT',
      'more than one ecluse-package artifact',
    );
  });
});

describe('what the package member is made of', () => {
  it('the nodejs range of a Depends field', () => {
    expect(nodeRangeOf('nodejs (>= 20.19), nodejs (<< 21)')).toBe('>= 20.19, << 21');
    expect(nodeRangeOf('libc6 (>= 2.36), nodejs:amd64 (>= 20) | nodejs-lts, adduser')).toBe('>= 20');
    expect(nodeRangeOf('libc6')).toBe('');
    expect(nodeRangeOf('')).toBe('');
  });

  it('the Debian name of the machine', () => {
    expect(stationArch('x64')).toBe('amd64');
    expect(stationArch('arm64')).toBe('arm64');
    expect(stationArch('ia32')).toBeNull();
  });
});
