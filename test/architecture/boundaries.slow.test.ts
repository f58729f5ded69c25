/**
 * The layering of DESIGN.md, held by ESLint (eslint.config.js, no-restricted-imports per folder): this lints
 * throw-away files that cross the boundaries, with the project's own config, and expects the run to fail on exactly
 * those imports (and to pass an import the layering allows).
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './import-graph.js';

const run = promisify(execFile);
const tag = `boundary-probe-${process.pid}`;
const probes: Record<string, { source: string; forbidden: boolean }> = {
  [`relay/${tag}.ts`]: {
    source: "export { CORE_ATTRIBUTES } from '../verifier/glance/list-query.js';\n",
    forbidden: true,
  },
  [`relay/feeds/${tag}.ts`]: {
    source: "import type { Site } from '../../verifier/site.js';\nexport type S = Site;\n",
    forbidden: true,
  },
  [`verifier/${tag}.ts`]: { source: "export { exportBundle } from '../relay/export.js';\n", forbidden: true },
  [`sneakernet/${tag}.ts`]: { source: "export { keyIdOf } from '../keys/keyid.js';\n", forbidden: true },
  [`keys/${tag}.ts`]: { source: "export { openSite } from '../verifier/site.js';\n", forbidden: true },
  [`verifier/glance/${tag}.ts`]: {
    source: "export { CORE_ATTRIBUTES } from '../../sneakernet/glance-vocabulary.js';\n",
    forbidden: false,
  },
};

interface LintResult {
  filePath: string;
  messages: Array<{ ruleId: string | null; message: string }>;
}

describe('the relay/verifier boundary (ESLint)', () => {
  afterAll(() => {
    for (const file of Object.keys(probes)) fs.rmSync(path.join(ROOT, file), { force: true });
  });

  it('fails the lint run on an import across it, naming the rule, and passes an allowed import', async () => {
    for (const [file, p] of Object.entries(probes)) fs.writeFileSync(path.join(ROOT, file), p.source);
    const eslint = path.join(ROOT, 'node_modules', 'eslint', 'bin', 'eslint.js');
    const status = await run(process.execPath, [eslint, '--format', 'json', ...Object.keys(probes)], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
    }).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (e: { code?: number; stdout?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '' }),
    );
    expect(status.code).toBe(1);
    const results = JSON.parse(status.stdout) as LintResult[];
    for (const [file, p] of Object.entries(probes)) {
      const r = results.find((x) => path.relative(ROOT, x.filePath) === file);
      expect(r, file).toBeDefined();
      const restricted = r!.messages.filter((m) => m.ruleId === 'no-restricted-imports');
      expect(restricted.length, `${file}: ${JSON.stringify(r!.messages)}`).toBe(p.forbidden ? 1 : 0);
      if (p.forbidden) expect(restricted[0]?.message).toMatch(/see DESIGN\.md, Layout/);
      expect(r!.messages.filter((m) => m.ruleId !== 'no-restricted-imports')).toEqual([]);
    }
  });
});
