/**
 * The installed `ecluse` starts node with the V8 flags of cli/node-flags.ts (its shebang): /usr/bin/ecluse is a link to
 * dist/cli/main.js, executed as is, and the import station's memory bound depends on them. The built file's first line
 * carries them, and a run through the shebang has them in `process.execArgv` (seen by a preload the test gives node).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../cli/node-flags.js';
import { CLI, tmpDir } from '../helpers/world.js';

const dir = tmpDir('ecluse-node-flags-');
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('the V8 flags ecluse runs with', () => {
  it('the built CLI is executable and its shebang passes the flags to node', () => {
    const first = fs.readFileSync(CLI, 'utf8').split('\n')[0];
    expect(first).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
    expect(fs.statSync(CLI).mode & 0o111).toBe(0o111);
  });

  it('a run through the shebang (as /usr/bin/ecluse runs) has them', () => {
    const seen = path.join(dir, 'execArgv.json');
    const preload = path.join(dir, 'record.cjs');
    fs.writeFileSync(
      preload,
      `require('node:fs').writeFileSync(${JSON.stringify(seen)}, JSON.stringify(process.execArgv));\n`,
    );
    const out = execFileSync(CLI, ['--version'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--require ${preload}` },
    });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+/);
    expect(JSON.parse(fs.readFileSync(seen, 'utf8'))).toEqual([...NODE_FLAGS]);
  });
});
