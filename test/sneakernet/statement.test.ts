/**
 * What parseStatement (sneakernet/statement.ts) makes of a statement's bytes, one hand-built valid statement broken one
 * way at a time: what it accepts (pretty-printed, exactly at the size bound, a first bundle with no predecessor); a
 * broken chain to the previous bundle; the bounds checked before parsing (size, nesting, UTF-8, not JSON); and the
 * schema (unknown or missing keys, wrong types and values). Every refusal is E_FORMAT. The checks across fields
 * (subjects against artifacts, volume names, entries covering each artifact once) are in statement-consistency.test.ts;
 * the shared setup is test/helpers/statement-fixture.ts.
 */
import { describe, expect, it } from 'vitest';
import { LIMITS } from '../../sneakernet/limits.js';
import {
  encodeStatement,
  entryPath,
  parseBoundedJson,
  parseStatement,
  type Statement,
} from '../../sneakernet/statement.js';
import { expectRefusal, refusal, sha256 } from './fixtures.js';
import { entry, mutated, refuse, valid, vol } from '../helpers/statement-fixture.js';

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
});
