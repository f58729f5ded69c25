/**
 * The import daemon runs node with the V8 flags of cli/node-flags.ts (the import station's memory bound depends on
 * them): its unit sets them in NODE_OPTIONS, node takes them there, and the serve unit keeps Node's defaults.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMPORT_NODE_FLAGS } from '../../cli/node-flags.js';
import { CLI, REPO } from '../helpers/world.js';

const unit = (name: string) => fs.readFileSync(path.join(REPO, 'systemd', name), 'utf8');
const environment = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('Environment='))
    .map((l) => l.slice('Environment='.length));

describe('the V8 flags the importer runs with', () => {
  it('the daemon unit gives node the import flags; the serve unit keeps Node defaults', () => {
    expect(environment(unit('ecluse-daemon.service'))).toContain(`NODE_OPTIONS=${IMPORT_NODE_FLAGS.join(' ')}`);
    expect(environment(unit('ecluse-serve.service')).filter((e) => e.startsWith('NODE_OPTIONS='))).toEqual([]);
  });

  it('node takes the unit NODE_OPTIONS (a flag it does not allow there would stop the daemon from starting)', () => {
    const line = environment(unit('ecluse-daemon.service')).find((e) => e.startsWith('NODE_OPTIONS=')) ?? '';
    const out = execFileSync(process.execPath, [CLI, '--version'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: line.slice('NODE_OPTIONS='.length) },
    });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+/);
    // The same run with a flag node refuses in NODE_OPTIONS fails: the check above can fail.
    expect(() =>
      execFileSync(process.execPath, [CLI, '--version'], {
        stdio: 'pipe',
        env: { ...process.env, NODE_OPTIONS: '--max-semi-space-size=2 --print' },
      }),
    ).toThrow(/not allowed in NODE_OPTIONS/);
  });
});
