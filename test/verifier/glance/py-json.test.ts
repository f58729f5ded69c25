/** pyJson (one pass over JSON.stringify) writes exactly what the value-by-value serialiser wrote, for any JSON value. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pyJson } from '../../../verifier/glance/errors.js';

/** The value-by-value serialiser pyJson replaced; kept as the reference its tests compare against. */
function pyJsonReference(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string')
    return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (typeof v === 'number' || typeof v === 'boolean') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(pyJsonReference).join(', ')}]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    return `{${entries.map(([k, x]) => `${pyJsonReference(k)}: ${pyJsonReference(x)}`).join(', ')}}`;
  }
  return 'null';
}

describe('pyJson', () => {
  it('equals the reference serialiser for any JSON value (unicode, escapes, nesting)', () => {
    const text = fc.string({ unit: 'binary' });
    const value = fc.letrec((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.constant(null),
        fc.boolean(),
        fc.integer(),
        fc.double({ noNaN: true, noDefaultInfinity: true }),
        text,
        fc.array(tie('v'), { maxLength: 4 }),
        fc.dictionary(text, fc.option(tie('v'), { nil: undefined }), { maxKeys: 4 }),
      ),
    })).v;
    fc.assert(
      fc.property(value, (v) => {
        expect(pyJson(v)).toBe(pyJsonReference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('writes Python separators and escapes non-ASCII, including in keys', () => {
    expect(pyJson({ clé: ['é', 1, null, { a: 'x,y:"z"' }] })).toBe(
      '{"cl\\u00e9": ["\\u00e9", 1, null, {"a": "x,y:\\"z\\""}]}',
    );
  });
});
