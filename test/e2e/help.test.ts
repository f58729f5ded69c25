/**
 * Issue 14, help: every leaf command's --help carries an example, and descriptions are prose that commander wraps at
 * the terminal's width (no line break written into the source shows up mid-sentence). The tree is walked through
 * the real CLI's own help output, so a new command is covered without touching this test.
 */
import { describe, expect, it } from 'vitest';
import { ecluse } from '../helpers/world.js';

async function help(path: string[]): Promise<string> {
  const r = await ecluse([...path, '--help']);
  expect(r.code, `ecluse ${path.join(' ')} --help: ${r.stderr}`).toBe(0);
  return r.stdout;
}

/** The subcommand names a help text lists under "Commands:" (without commander's own `help`). */
function subcommands(text: string): string[] {
  const at = text.indexOf('\nCommands:\n');
  if (at < 0) return [];
  const names: string[] = [];
  for (const line of text.slice(at + '\nCommands:\n'.length).split('\n')) {
    if (line.trim() === '') break;
    const m = /^ {2}([a-z][a-z0-9-]*)/.exec(line);
    if (m && m[1] !== 'help') names.push(m[1] as string);
  }
  return names;
}

async function leaves(path: string[] = []): Promise<Array<{ path: string[]; text: string }>> {
  const text = await help(path);
  const subs = subcommands(text);
  if (subs.length === 0) return [{ path, text }];
  const out: Array<{ path: string[]; text: string }> = [];
  for (const s of subs) out.push(...(await leaves([...path, s])));
  return out;
}

describe('help', () => {
  it('every leaf command has an example, and no description breaks a sentence where the source did', async () => {
    const all = await leaves();
    expect(all.length).toBeGreaterThan(40);
    const withoutExample = all.filter((l) => !/\bExamples?\b/.test(l.text)).map((l) => l.path.join(' '));
    expect(withoutExample).toEqual([]);
    // The description is the paragraph after "Usage:"; wrapped at 80 columns by commander, so no line of it is
    // shorter than it must be unless the next word would not fit.
    for (const l of all) {
      const lines = l.text.split('\n');
      const start = lines.findIndex((x) => x.startsWith('Usage:')) + 2;
      const paragraph: string[] = [];
      for (let i = start; i < lines.length && (lines[i] as string).trim() !== ''; i++)
        paragraph.push(lines[i] as string);
      for (let i = 0; i + 1 < paragraph.length; i++) {
        const next = (paragraph[i + 1] as string).split(' ')[0] as string;
        expect(
          (paragraph[i] as string).length + 1 + next.length,
          `ecluse ${l.path.join(' ')}: "${paragraph[i]}" broken before "${next}"`,
        ).toBeGreaterThan(80);
      }
    }
  });

  it('the daemon description reads as one sentence', async () => {
    const text = await help(['daemon']);
    expect(text.replace(/\s+/g, ' ')).toContain('import their bundles in sequence order, one medium after the other');
    expect(text).not.toMatch(/import their bundles in\nsequence order/);
  });
});
