import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compareVersions } from '../../../verifier/policy/version-order.js';

const VERSIONS = [
  '0.9',
  '1.0~rc1',
  '1.0',
  '1.0.1',
  '1.0a',
  '1.0+b1',
  '1.2',
  '1.2.9',
  '1.2.10',
  '1.10',
  '1.rc1',
  '2',
  '2026.11.2',
  '2026.11.21',
  '20261015',
  '20261101',
  '13.2-1',
  '13.2-10',
  '1.99999999999999999999',
];

function dpkg(a: string, b: string): number {
  const lt = (x: string, y: string) => {
    try {
      execFileSync('dpkg', ['--compare-versions', x, 'lt', y]);
      return true;
    } catch {
      return false;
    }
  };
  return lt(a, b) ? -1 : lt(b, a) ? 1 : 0;
}

describe('compareVersions', () => {
  it('orders the usual release versions', () => {
    expect(compareVersions('1.2', '1.10')).toBe(-1);
    expect(compareVersions('20261015', '20261101')).toBe(-1);
    expect(compareVersions('1.0~rc1', '1.0')).toBe(-1);
    expect(compareVersions('13.2-1', '13.2-1')).toBe(0);
    expect(compareVersions('1.99999999999999999998', '1.99999999999999999999')).toBe(-1);
  });

  it('agrees with dpkg --compare-versions on every pair', () => {
    const pairs = VERSIONS.flatMap((a) => VERSIONS.map((b) => [a, b] as const));
    for (const [a, b] of pairs) expect(compareVersions(a, b), `${a} vs ${b}`).toBe(dpkg(a, b));
  });
});
