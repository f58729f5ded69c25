/**
 * Property tests of the on-media format with fast-check: whatever is done to a valid statement or a valid volume, the
 * parsers answer with an EcluseError (or, for a statement, a harmless edit may still parse), quickly, and a volume with
 * any changed byte is never accepted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EcluseError } from '../../sneakernet/errors.js';
import { encodeStatement, parseStatement, type Volume } from '../../sneakernet/statement.js';
import { planVolumes } from '../../sneakernet/volume-plan.js';
import { readVolume } from '../../sneakernet/volume-reader.js';
import { drain, randomBytes, rmDir, tmpDir, writeBundle, type WrittenBundle } from './fixtures.js';

type Mutation =
  | { kind: 'flip'; at: number; mask: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'splice'; at: number; text: string };

/** Mutations at positions given as fractions of the length, so one arbitrary fits any buffer. */
function mutation(byte: fc.Arbitrary<number>, mask: fc.Arbitrary<number>): fc.Arbitrary<Mutation> {
  const at = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
  return fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at, mask }),
    fc.record({
      kind: fc.constant('insert' as const),
      at,
      bytes: fc.array(byte, { minLength: 1, maxLength: 64 }).map((bs) => Uint8Array.from(bs)),
    }),
    fc.record({ kind: fc.constant('delete' as const), at, length: fc.integer({ min: 1, max: 512 }) }),
    fc.record({ kind: fc.constant('truncate' as const), at }),
    fc.record({
      kind: fc.constant('splice' as const),
      at,
      text: fc.constantFrom(
        '[[[[[[[[[[[[[[[[[[[[',
        '{"a":{"a":{"a":',
        '"',
        '\\',
        '\\u0000',
        '}',
        ']',
        ',',
        'null',
        '-1e999',
        '1e400',
        '0.5',
        '"__proto__"',
        '{"__proto__":{"x":1}}',
      ),
    }),
  );
}

function apply(buf: Buffer, m: Mutation): Buffer {
  const at = Math.min(
    buf.length,
    Math.floor(m.at * (buf.length + (m.kind === 'insert' || m.kind === 'splice' ? 1 : 0))),
  );
  switch (m.kind) {
    case 'flip': {
      const b = Buffer.from(buf);
      if (at < b.length) b[at] = (b[at] ?? 0) ^ m.mask;
      return b;
    }
    case 'insert':
      return Buffer.concat([buf.subarray(0, at), Buffer.from(m.bytes), buf.subarray(at)]);
    case 'splice':
      return Buffer.concat([buf.subarray(0, at), Buffer.from(m.text), buf.subarray(at)]);
    case 'delete':
      return Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.length)]);
    case 'truncate':
      return buf.subarray(0, at);
  }
}

describe('parseStatement under random mutation', () => {
  let valid: Buffer;
  beforeAll(async () => {
    const dir = await tmpDir();
    try {
      const b = await writeBundle(dir, [randomBytes(70_000), randomBytes(0), randomBytes(513)], 64 * 1024, planVolumes);
      valid = encodeStatement(b.statement);
      expect(() => parseStatement(valid)).not.toThrow();
      expect(valid.every((c) => c < 0x80)).toBe(true); // ASCII: the ASCII-only property below keeps it valid UTF-8
    } finally {
      await rmDir(dir);
    }
  });

  function check(mutations: Mutation[]): void {
    let bytes = valid;
    for (const m of mutations) bytes = apply(bytes, m);
    const started = performance.now();
    try {
      parseStatement(bytes);
    } catch (e) {
      if (!(e instanceof EcluseError)) {
        throw new Error(
          `threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message} for ${JSON.stringify(bytes.toString('latin1').slice(0, 200))}…`,
        );
      }
      expect(e.code).toBe('E_FORMAT');
    }
    expect(performance.now() - started).toBeLessThan(250);
  }

  it('ASCII-preserving mutations: only E_FORMAT, and quickly', () => {
    const ascii = fc.integer({ min: 0, max: 0x7f });
    fc.assert(
      fc.property(fc.array(mutation(ascii, fc.integer({ min: 1, max: 0x7f })), { minLength: 1, maxLength: 4 }), check),
      { numRuns: 200 },
    );
  });

  // Any byte: includes mutations that make the bytes invalid UTF-8 (once a TypeError, now E_FORMAT).
  it('byte-level mutations (any byte) give only E_FORMAT, and quickly', () => {
    fc.assert(
      fc.property(
        fc.array(mutation(fc.integer({ min: 0, max: 0xff }), fc.integer({ min: 1, max: 0xff })), {
          minLength: 1,
          maxLength: 4,
        }),
        check,
      ),
      { numRuns: 200 },
    );
  });
});

describe('readVolume under random single-byte flips', () => {
  let dir: string;
  let b: WrittenBundle;
  let original: Buffer;
  let volume: Volume;
  let n = 0;

  beforeAll(async () => {
    dir = await tmpDir();
    const src = path.join(dir, 'src');
    await fs.promises.mkdir(src);
    // A small volume: three entries (one empty), so headers, data, padding and the end of archive are all hit.
    b = await writeBundle(src, [randomBytes(700), randomBytes(0), randomBytes(1500)], 64 * 1024, planVolumes);
    expect(b.volumes).toHaveLength(1);
    volume = b.volumes[0] as Volume;
    original = await fs.promises.readFile(b.files[0] as string);
    await readVolume(b.files[0] as string, volume, drain); // control: the intact volume reads
  });
  afterAll(() => rmDir(dir));

  it('every flip anywhere is refused with an EcluseError naming the volume (E_DIGEST)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: 1_000_000 }), fc.integer({ min: 1, max: 0xff }), async (where, mask) => {
        const at = where % original.length;
        const bytes = Buffer.from(original);
        bytes[at] = (bytes[at] ?? 0) ^ mask;
        const file = path.join(dir, `flip-${++n}.tar`);
        await fs.promises.writeFile(file, bytes);
        const settled = readVolume(file, volume, drain).then(
          () => 'resolved',
          (e: unknown) => e,
        );
        const timeout = new Promise((r) => setTimeout(() => r('timed out'), 5000));
        const outcome = await Promise.race([settled, timeout]);
        await fs.promises.rm(file);
        if (!(outcome instanceof EcluseError)) {
          throw new Error(
            `flip of byte ${at} by 0x${mask.toString(16)}: ${outcome instanceof Error ? outcome.stack : String(outcome)}`,
          );
        }
        expect(outcome.message).toContain(volume.name);
        expect(outcome.code).toBe('E_DIGEST');
      }),
      { numRuns: 200 },
    );
  });
});
