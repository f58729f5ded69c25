/**
 * Reading a `tempest run`: its summary, its failures and its skips, and why each skip is fine (a skip the real
 * Glance has too, or a deliberate difference of écluse's switched off in tempest-features). Used by
 * tempest.slow.test.ts.
 */
import { DELIBERATE_DIFFERENCES, TEMPEST_SKIPS_OF_REAL_GLANCE } from './differences.js';

/** Tempest's own summary and its skips, from `tempest run` output. */
export function parseTempest(out: string): {
  ran: number;
  passed: number;
  skipped: number;
  failed: number;
  failures: string[];
  skips: { test: string; reason: string }[];
} {
  const num = (re: RegExp) => Number(re.exec(out)?.[1] ?? NaN);
  const skips = [...out.matchAll(/^(?:\{\d+\} )?(.+?)(?: \[[\d.]+s\])? \.\.\. SKIPPED: (.*)$/gm)].map((m) => ({
    test: m[1]!,
    reason: m[2]!,
  }));
  const failures = [...out.matchAll(/^(?:\{\d+\} )?(\S+)(?: \[[\d.]+s\])? \.\.\. FAILED$/gm)].map((m) => m[1]!);
  return {
    ran: num(/^Ran: (\d+) tests/m),
    passed: num(/^ - Passed: (\d+)/m),
    skipped: num(/^ - Skipped: (\d+)/m),
    failed: num(/^ - Failed: (\d+)/m),
    failures,
    skips,
  };
}

/**
 * Why a skip is fine: a skip of the real Glance here, or a deliberate difference switched off by its flag in
 * `features` (the contents of tempest-features).
 */
export function explainSkip(skip: { test: string; reason: string }, features: string): string | undefined {
  const line = `${skip.test} ${skip.reason}`;
  const real = TEMPEST_SKIPS_OF_REAL_GLANCE.find((s) => s.skips.test(line));
  if (real) return `real Glance skips it too: ${real.why}`;
  const d = DELIBERATE_DIFFERENCES.find(
    (x) => x.tempest && features.split(/\s+/).includes(x.tempest.flag) && x.tempest.skips.test(line),
  );
  return d ? `deliberate difference ${d.id} (${d.tempest?.flag}): ${d.why}` : undefined;
}
