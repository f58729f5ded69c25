/**
 * No import cycles between source files (type-only imports count: a cycle of types is still two modules that cannot
 * be understood one without the other). The graph is the TypeScript compiler's own resolution of tsconfig.json.
 */
import { describe, expect, it } from 'vitest';
import { importCycles, importGraph } from './import-graph.js';

describe('the import graph', () => {
  const graph = importGraph();

  it('covers every source folder', () => {
    const folders = new Set([...graph.keys()].map((f) => f.split('/')[0]));
    expect([...folders].sort()).toEqual(['bench', 'cli', 'keys', 'relay', 'scripts', 'sneakernet', 'verifier']);
    // sanity: resolution works (.js specifiers to .ts files), so an empty cycle list means something
    expect(graph.get('sneakernet/statement.ts')).toContain('sneakernet/delta.ts');
  });

  it('has no cycle', () => {
    expect(importCycles(graph)).toEqual([]);
  });

  it('finds a cycle when there is one (the check can fail)', () => {
    const withCycle = new Map(graph);
    withCycle.set('sneakernet/delta.ts', [...(graph.get('sneakernet/delta.ts') ?? []), 'sneakernet/statement.ts']);
    expect(importCycles(withCycle)).toEqual([['sneakernet/delta.ts', 'sneakernet/statement.ts']]);
    expect(
      importCycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', ['c.ts']],
          ['c.ts', ['a.ts']],
        ]),
      ),
    ).toEqual([['a.ts', 'b.ts', 'c.ts']]);
  });
});
