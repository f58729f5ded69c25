import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../sneakernet/limits.js';
import {
  checkConsistency,
  encodeStatement,
  entryPath,
  parseBoundedJson,
  parseStatement,
  volumeName,
  type Statement,
} from '../../sneakernet/statement.js';
import { clone, expectRefusal, makeArtifact, makeStatement, refusal, sha256 } from './fixtures.js';

const A0 = Buffer.alloc(1000, 0xa0);
const A1 = Buffer.alloc(5000, 0xa1);
const A2 = Buffer.alloc(0);

/**
 * A statement built by hand: artifact 0 (1000 bytes) whole in vol-0001; artifact 1 (5000 bytes) in two pieces, 4096
 * bytes in vol-0001 and 904 in vol-0002; artifact 2 (empty) whole in vol-0002.
 */
function valid(): Statement {
  const artifacts = [makeArtifact(0, A0), makeArtifact(1, A1), makeArtifact(2, A2)];
  const [s0, s1, s2] = artifacts.map((a) => a.sha256) as [string, string, string];
  return makeStatement(artifacts, [
    {
      name: 'vol-0001.tar',
      size: 1024 + 512 + 1024 + 512 + 4096,
      sha256: sha256('vol 1'),
      entries: [
        { path: `blobs/sha256/${s0}`, artifact: 0, offset: 0, size: 1000 },
        { path: `blobs/sha256/${s1}.part0001`, artifact: 1, offset: 0, size: 4096 },
      ],
    },
    {
      name: 'vol-0002.tar',
      size: 1024 + 512 + 1024 + 512,
      sha256: sha256('vol 2'),
      entries: [
        { path: `blobs/sha256/${s1}.part0002`, artifact: 1, offset: 4096, size: 904 },
        { path: `blobs/sha256/${s2}`, artifact: 2, offset: 0, size: 0 },
      ],
    },
  ]);
}

/** Applies `f` to a fresh valid statement (as plain JSON, so any shape can be made) and serialises it. */
function mutated(f: (s: Record<string, unknown> & Statement) => void): Buffer {
  const s = clone(valid()) as Record<string, unknown> & Statement;
  f(s);
  return Buffer.from(JSON.stringify(s), 'utf8');
}

const refuse = (bytes: Buffer, ...inMessage: string[]) =>
  expectRefusal(() => parseStatement(bytes), 'E_FORMAT', ...inMessage);

/** Mutable views into the statement for the consistency cases. */
const vol = (s: Statement, i: number) => s.predicate.volumes[i] as Statement['predicate']['volumes'][number];
const entry = (s: Statement, v: number, e: number) =>
  vol(s, v).entries[e] as Statement['predicate']['volumes'][number]['entries'][number];

describe('parseStatement accepts', () => {
  it('a valid statement built by hand, unchanged', () => {
    const s = valid();
    const bytes = encodeStatement(s);
    expect(parseStatement(bytes)).toEqual(s);
    expect(entryPath(s.predicate.artifacts[1]?.sha256 ?? '', 2, 2)).toBe(entry(s, 1, 0).path);
  });

  it('pretty-printed JSON and brackets inside strings (they do not count as nesting)', () => {
    const s = valid();
    const a = s.predicate.artifacts[0];
    if (!a) throw new Error('no artifact');
    a.properties.description = '['.repeat(500) + '{'.repeat(500) + '\\"]}';
    expect(parseStatement(Buffer.from(JSON.stringify(s, null, 2)))).toEqual(s);
  });

  it('a statement of exactly LIMITS.statementBytes bytes', () => {
    const bytes = encodeStatement(valid());
    const padded = Buffer.concat([bytes, Buffer.alloc(LIMITS.statementBytes - bytes.length, 0x20)]);
    expect(padded.length).toBe(LIMITS.statementBytes);
    expect(() => parseStatement(padded)).not.toThrow();
  });

  it('a null previous bundle (the first export, sequence 1)', () => {
    const first = mutated((s) => {
      s.predicate.previous = null;
      s.predicate.sequence = 1;
    });
    expect(() => parseStatement(first)).not.toThrow();
  });
});

describe('parseStatement refuses a broken chain with E_FORMAT', () => {
  it('no predecessor on a bundle after the first', async () => {
    await refuse(
      mutated((s) => (s.predicate.previous = null)),
      'no predecessor',
    );
  });

  it('a predecessor on bundle 1', async () => {
    await refuse(
      mutated((s) => (s.predicate.sequence = 1)),
      'no predecessor',
    );
  });

  it('a predecessor that is not the bundle just before', async () => {
    await refuse(
      mutated((s) => {
        if (s.predicate.previous) s.predicate.previous.sequence = 5;
      }),
      'names bundle 5',
    );
  });

  it('times with fractional seconds (one spelling per instant)', async () => {
    await refuse(
      mutated((s) => (s.predicate.created = '2026-11-21T10:00:00.500Z')),
      'created',
    );
  });

  it('an uppercase bundle id', async () => {
    await refuse(
      mutated((s) => (s.predicate.bundleId = s.predicate.bundleId.toUpperCase())),
      'bundleId',
    );
  });
});

describe('parseStatement refuses with E_FORMAT', () => {
  describe('bounds, before parsing', () => {
    it('more than LIMITS.statementBytes bytes', async () => {
      const bytes = encodeStatement(valid());
      const over = Buffer.concat([bytes, Buffer.alloc(LIMITS.statementBytes - bytes.length + 1, 0x20)]);
      await refuse(over, `${LIMITS.statementBytes}`);
    });

    it('JSON nested deeper than LIMITS.jsonDepth', async () => {
      const deep = (n: number) => Buffer.from(`{"_type":${'['.repeat(n)}${']'.repeat(n)}}`);
      // depth = the object + n arrays
      await refuse(deep(LIMITS.jsonDepth), 'nests deeper');
      const e = await refusal(() => parseStatement(deep(LIMITS.jsonDepth - 1)));
      expect(e.code).toBe('E_FORMAT');
      expect(e.message).not.toContain('nests deeper'); // within the bound: refused by the schema instead
    });

    it('pathologically deep JSON quickly, without a stack overflow', async () => {
      const n = 1_000_000;
      const started = performance.now();
      await refuse(Buffer.from('['.repeat(n) + ']'.repeat(n)), 'nests deeper');
      await refuse(Buffer.from('{"a":'.repeat(n / 10)), 'nests deeper');
      expect(performance.now() - started).toBeLessThan(2000);
    });

    it('deep nesting after an escaped backslash in a string is still counted', async () => {
      await refuse(Buffer.from(`["\\\\", ${'['.repeat(40)}${']'.repeat(40)}]`), 'nests deeper');
    });

    // statement.ts:157: TextDecoder({ fatal: true }) throws a TypeError (ERR_ENCODING_INVALID_ENCODED_DATA) outside the
    // try/catch, so the caller gets a non-EcluseError (the importer turns it into E_INTERNAL, "a bug").
    it('regression (was a bug): invalid UTF-8 throws a TypeError instead of E_FORMAT', async () => {
      const text = encodeStatement(valid()).toString('utf8');
      const at = text.indexOf('os_distro') + 'os_distro":"'.length;
      for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
        const bytes = Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bad), Buffer.from(text.slice(at))]);
        await refuse(bytes);
      }
    });

    it('not JSON at all', async () => {
      await refuse(Buffer.from('not json'), 'not valid JSON');
      await refuse(Buffer.alloc(0), 'not valid JSON');
      await refuse(encodeStatement(valid()).subarray(0, 100), 'not valid JSON');
    });

    it('parseBoundedJson names what it read', async () => {
      await expectRefusal(() => parseBoundedJson(Buffer.from('{'), 'the root file', 10), 'E_FORMAT', 'the root file');
      await expectRefusal(
        () => parseBoundedJson(Buffer.alloc(11, 0x20), 'the root file', 10),
        'E_FORMAT',
        'the root file',
      );
    });
  });

  describe('schema', () => {
    it('JSON that is not an object', async () => {
      for (const t of ['null', '[]', '42', '"statement"', 'true']) await refuse(Buffer.from(t), 'malformed');
    });

    it('an unknown top-level key', async () => {
      await refuse(
        mutated((s) => (s.signature = 'x')),
        'malformed',
      );
    });

    it('an unknown predicate key', async () => {
      await refuse(
        mutated((s) => ((s.predicate as unknown as Record<string, unknown>).comment = 'x')),
        'malformed',
      );
    });

    it('unknown keys deeper down (artifact, volume, entry, subject digest, provenance, previous)', async () => {
      const extra = (o: unknown) => ((o as Record<string, unknown>).extra = 1);
      await refuse(mutated((s) => extra(s.predicate.artifacts[0])));
      await refuse(mutated((s) => extra(s.predicate.volumes[0])));
      await refuse(mutated((s) => extra(s.predicate.volumes[0]?.entries[0])));
      await refuse(mutated((s) => extra(s.subject[0]?.digest)));
      await refuse(mutated((s) => extra(s.predicate.artifacts[0]?.provenance)));
      await refuse(mutated((s) => extra(s.predicate.previous)));
    });

    it('a missing required key', async () => {
      await refuse(mutated((s) => delete (s.predicate as Partial<Statement['predicate']>).expires));
      await refuse(mutated((s) => delete (s as Partial<Statement>).subject));
    });

    it.each<[string, (s: Statement) => void]>([
      ['_type', (s) => ((s as { _type: string })._type = 'https://in-toto.io/Statement/v0.1')],
      ['predicateType', (s) => ((s as { predicateType: string }).predicateType = 'https://slsa.dev/provenance/v1')],
      ['formatVersion 2', (s) => ((s.predicate as { formatVersion: number }).formatVersion = 2)],
      ['sequence as a string', (s) => ((s.predicate as { sequence: unknown }).sequence = '7')],
      ['sequence 0', (s) => (s.predicate.sequence = 0)],
      ['sequence not an integer', (s) => (s.predicate.sequence = 7.5)],
      ['bundleId not a uuid', (s) => (s.predicate.bundleId = 'not-a-uuid')],
      ['site with a slash', (s) => (s.predicate.site = 'site/a')],
      ['station empty', (s) => (s.predicate.station = '')],
      ['created with an offset', (s) => (s.predicate.created = '2025-01-02T03:04:05+01:00')],
      ['created not a date', (s) => (s.predicate.created = 'yesterday')],
      ['volumes empty', (s) => (s.predicate.volumes = [])],
      ['artifacts empty', (s) => (s.predicate.artifacts = [])],
      ['an artifact size as a string', (s) => ((s.predicate.artifacts[0] as { size: unknown }).size = '1000')],
      ['an artifact size negative', (s) => ((s.predicate.artifacts[0] as { size: number }).size = -1)],
      [
        'an artifact size over the limit',
        (s) => ((s.predicate.artifacts[0] as { size: number }).size = LIMITS.artifactBytes + 1),
      ],
      [
        'an uppercase sha256',
        (s) => ((s.predicate.artifacts[0] as { sha256: string }).sha256 = sha256('x').toUpperCase()),
      ],
      ['a short sha512', (s) => ((s.predicate.artifacts[0] as { sha512: string }).sha512 = 'ab')],
      ['artifact type', (s) => ((s.predicate.artifacts[0] as { type: string }).type = 'container')],
      ['diskFormat', (s) => ((s.predicate.artifacts[0] as { diskFormat: string }).diskFormat = 'exe')],
      [
        'a property key with a space',
        (s) => ((s.predicate.artifacts[0] as { properties: object }).properties = { 'a b': 'x' }),
      ],
      [
        'a property value not a string',
        (s) => ((s.predicate.artifacts[0] as { properties: object }).properties = { a: 1 }),
      ],
      ['an artifact name with a slash', (s) => ((s.predicate.artifacts[0] as { name: string }).name = '../etc')],
      ['a volume name', (s) => (vol(s, 0).name = 'volume-1.tar')],
      ['a volume size 0', (s) => (vol(s, 0).size = 0)],
      ['a volume with no entries', (s) => (vol(s, 1).entries = [])],
      ['an entry path too long', (s) => (entry(s, 0, 0).path = 'x'.repeat(201))],
      ['an entry artifact index over the limit', (s) => (entry(s, 0, 0).artifact = LIMITS.artifacts)],
      ['an entry offset negative', (s) => (entry(s, 0, 0).offset = -1)],
      ['an entry size not an integer', (s) => (entry(s, 0, 0).size = 1.5)],
      ['a subject without sha512', (s) => delete (s.subject[0]?.digest as { sha512?: string }).sha512],
      ['previous sequence 0', (s) => ((s.predicate.previous as { sequence: number }).sequence = 0)],
    ])('a wrong type or value: %s', async (_label, f) => {
      await refuse(mutated(f), 'malformed');
    });
  });

  describe('consistency', () => {
    it('a subject name not matching its artifact', async () => {
      await refuse(
        mutated((s) => ((s.subject[0] as { name: string }).name = 'image-0@9.9')),
        'subject 0',
      );
    });

    it('a subject digest not matching its artifact', async () => {
      await refuse(
        mutated((s) => ((s.subject[1]?.digest as { sha256: string }).sha256 = sha256('other'))),
        'subject 1',
      );
      await refuse(
        mutated((s) => ((s.subject[1]?.digest as { sha512: string }).sha512 = 'a'.repeat(128))),
        'subject 1',
      );
    });

    it('subjects in another order than the artifacts', async () => {
      await refuse(
        mutated((s) => s.subject.reverse()),
        'subject',
      );
    });

    it('more or fewer subjects than artifacts', async () => {
      await refuse(
        mutated((s) => s.subject.pop()),
        'number',
      );
      await refuse(
        mutated((s) => s.subject.push(clone(s.subject[0] as Statement['subject'][number]))),
        'number',
      );
    });

    it('an artifact listed twice', async () => {
      await refuse(
        mutated((s) => {
          const a = s.predicate.artifacts[2] as { name: string; version: string };
          a.name = 'image-1';
          a.version = '1.0.1';
          (s.subject[2] as { name: string }).name = 'image-1@1.0.1';
        }),
        'twice',
      );
    });

    it('expires before created, or equal to it', async () => {
      await refuse(
        mutated((s) => (s.predicate.expires = '2025-01-01T00:00:00Z')),
        'expires',
      );
      await refuse(
        mutated((s) => (s.predicate.expires = s.predicate.created)),
        'expires',
      );
    });

    it('volume names not consecutive', async () => {
      await refuse(
        mutated((s) => (vol(s, 1).name = 'vol-0003.tar')),
        'vol-0002.tar',
      );
      await refuse(
        mutated((s) => s.predicate.volumes.reverse()),
        'expected vol-0001.tar',
      );
      await refuse(
        mutated((s) => (vol(s, 0).name = 'vol-00001.tar')),
        'vol-0001.tar',
      );
      expect(volumeName(9999)).toBe('vol-10000.tar');
    });

    it('entries out of order (pieces swapped across volumes)', async () => {
      await refuse(
        mutated((s) => {
          const first = vol(s, 0).entries.pop();
          const second = vol(s, 1).entries.shift();
          if (!first || !second) throw new Error('bad fixture');
          vol(s, 0).entries.push(second);
          vol(s, 1).entries.unshift(first);
        }),
        'out of order',
      );
    });

    it('entries of one volume out of artifact order', async () => {
      await refuse(
        mutated((s) => vol(s, 1).entries.reverse()),
        'out of order',
      );
    });

    it('a gap between pieces', async () => {
      await refuse(
        mutated((s) => (entry(s, 1, 0).offset = 4097)),
        'out of order',
      );
    });

    it('overlapping pieces', async () => {
      await refuse(
        mutated((s) => {
          entry(s, 1, 0).offset = 4095;
          entry(s, 1, 0).size = 905;
        }),
        'out of order',
      );
    });

    it('pieces adding up to more than the artifact', async () => {
      await refuse(
        mutated((s) => (entry(s, 1, 0).size = 905)),
        'more than its size',
      );
    });

    it('pieces not covering the artifact', async () => {
      await refuse(mutated((s) => (entry(s, 1, 0).size = 903)));
    });

    it('an artifact with no entries at the end', async () => {
      await refuse(
        mutated((s) => vol(s, 1).entries.pop()),
        'cover',
      );
    });

    it('a non-empty artifact with no entries', async () => {
      await refuse(
        mutated((s) => {
          vol(s, 0).entries.shift();
        }),
        'out of order',
      );
    });

    it('an entry for an artifact that does not exist', async () => {
      await refuse(mutated((s) => vol(s, 1).entries.push({ ...entry(s, 1, 1), artifact: 3 })));
    });

    it('an empty piece of a non-empty artifact', async () => {
      await refuse(
        mutated((s) => {
          const p = entry(s, 1, 0);
          vol(s, 1).entries.splice(0, 0, { ...p, path: p.path, size: 0 });
        }),
      );
    });

    it('an entry path not the content-addressed one', async () => {
      await refuse(
        mutated((s) => (entry(s, 0, 0).path = `blobs/sha256/${sha256('x')}`)),
        'should be named',
      );
      await refuse(
        mutated((s) => (entry(s, 0, 0).path = `${entry(s, 0, 0).path}.part0001`)),
        'should be named',
      );
      await refuse(
        mutated((s) => (entry(s, 1, 0).path = entry(s, 1, 0).path.replace('part0002', 'part0001'))),
        'should be named',
      );
    });

    it('the same entry path twice (two artifacts with the same bytes)', async () => {
      await refuse(
        mutated((s) => {
          const a2 = s.predicate.artifacts[2] as { sha256: string; sha512: string; size: number };
          const a0 = s.predicate.artifacts[0] as { sha256: string; sha512: string; size: number };
          Object.assign(a2, { sha256: a0.sha256, sha512: a0.sha512, size: a0.size });
          Object.assign(s.subject[2]?.digest ?? {}, { sha256: a0.sha256, sha512: a0.sha512 });
          Object.assign(entry(s, 1, 1), { path: entry(s, 0, 0).path, size: a0.size });
        }),
        'twice',
      );
    });

    it('checkConsistency accepts what it is given after parsing', () => {
      expect(() => checkConsistency(valid())).not.toThrow();
    });

    // statement.ts:228 lets the walk step past an artifact whose size is 0 when the next entry belongs to the next
    // artifact, so a zero-byte artifact needs no entry at all; the same artifact in last position is refused. The doc
    // comment promises "every artifact is covered exactly once"; the reader then never stages it (the importer only
    // notices later, by counting staged artifacts).
    it('regression (was a bug): a zero-byte artifact with no entry is accepted when another artifact follows it', async () => {
      const artifacts = [makeArtifact(0, A2), makeArtifact(1, A0)];
      const s = makeStatement(artifacts, [
        {
          name: 'vol-0001.tar',
          size: 1024 + 512 + 1024,
          sha256: sha256('v'),
          entries: [{ path: entryPath(artifacts[1]?.sha256 ?? '', 1, 1), artifact: 1, offset: 0, size: 1000 }],
        },
      ]);
      await refuse(encodeStatement(s), 'cover');
    });
  });
});
