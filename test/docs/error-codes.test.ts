/**
 * The error codes are a public contract declared once, in sneakernet/errors.ts. docs/FORMAT.md 6.1 is generated from
 * that list (run this file with ECLUSE_WRITE_DOCS=1 to rewrite the table after adding a code), and the README's code
 * tables are checked against it: every code they name exists, and every refusal code is explained there.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, EXIT, type ErrorCode } from '../../sneakernet/errors.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const FORMAT = path.join(REPO, 'docs', 'FORMAT.md');
const README = path.join(REPO, 'README.md');
const START = '<!-- error-codes: generated from sneakernet/errors.ts by test/docs/error-codes.test.ts -->';
const END = '<!-- /error-codes -->';

const CATEGORY_WORDS = {
  refused: 'refused',
  usage: 'bad usage',
  failure: 'local failure',
  nothingToDo: 'nothing to do',
} as const;

/** The 6.1 table as prettier lays it out (columns padded to the widest cell). */
function renderTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, d]) => [
    `\`${code}\``,
    `${CATEGORY_WORDS[d.category]} (${EXIT[d.category]})`,
    d.meaning,
  ]);
  const header = ['code', 'category (exit status)', 'meaning'];
  const width = (s: string) => [...s].length;
  const widths = header.map((h, i) => Math.max(width(h), ...rows.map((r) => width(r[i] as string))));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => c + ' '.repeat((widths[i] as number) - width(c))).join(' | ')} |`;
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n');
}

/** `[code, cells...]` of every table row of `text` whose first cell names codes. */
function codeRows(text: string): Array<{ codes: string[]; cells: string[] }> {
  return text
    .split('\n')
    .filter((l) => /^\| `E_/.test(l))
    .map((l) => {
      const cells = l
        .slice(1, -1)
        .split(' | ')
        .map((c) => c.trim());
      return { codes: [...(cells[0] ?? '').matchAll(/`(E_[A-Z_]+)`/g)].map((m) => m[1] as string), cells };
    });
}

describe('error codes in the docs', () => {
  it('FORMAT.md 6.1 is the registry: every code, its category and exit status, its meaning', () => {
    let text = fs.readFileSync(FORMAT, 'utf8');
    const at = text.indexOf(START);
    const end = text.indexOf(END);
    expect(at, `FORMAT.md lacks the ${START} marker`).toBeGreaterThan(0);
    const current = text.slice(at + START.length, end).trim();
    if (process.env.ECLUSE_WRITE_DOCS === '1' && current !== renderTable()) {
      text = `${text.slice(0, at + START.length)}\n\n${renderTable()}\n\n${text.slice(end)}`;
      fs.writeFileSync(FORMAT, text);
    }
    const rows = codeRows(fs.readFileSync(FORMAT, 'utf8').slice(at, fs.readFileSync(FORMAT, 'utf8').indexOf(END)));
    expect(rows.map((r) => r.codes[0])).toEqual(Object.keys(ERROR_CODES));
    for (const r of rows) {
      const d = ERROR_CODES[r.codes[0] as ErrorCode];
      expect(r.cells[1]).toBe(`${CATEGORY_WORDS[d.category]} (${EXIT[d.category]})`);
      expect(r.cells[2]).toBe(d.meaning);
    }
    expect(current, 'FORMAT.md 6.1 is out of date: run this test with ECLUSE_WRITE_DOCS=1').toBe(renderTable());
  });

  it("the README's code tables name only registered codes, and explain every refusal", () => {
    const rows = codeRows(fs.readFileSync(README, 'utf8'));
    const named = new Set(rows.flatMap((r) => r.codes));
    for (const code of named) expect(Object.keys(ERROR_CODES), `README names ${code}`).toContain(code);
    const refusals = Object.entries(ERROR_CODES)
      .filter(([, d]) => d.category === 'refused')
      .map(([c]) => c);
    expect(
      refusals.filter((c) => !named.has(c)),
      'refusal codes the README does not explain',
    ).toEqual([]);
    for (const r of rows) expect(r.cells[1]?.length, `README row of ${r.codes.join(', ')}`).toBeGreaterThan(10);
  });

  it('the exit status of each category is the one the README and --help promise', () => {
    const readme = fs.readFileSync(README, 'utf8');
    expect(readme).toMatch(
      /\*\*0\*\* success, \*\*1\*\* refused.*\*\*2\*\* bad usage.*\*\*3\*\* a local failure.*\*\*4\*\* nothing to do/s,
    );
    expect(EXIT).toEqual({ ok: 0, refused: 1, usage: 2, failure: 3, nothingToDo: 4 });
  });
});
