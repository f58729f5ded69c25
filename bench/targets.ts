/** The verdict table `npm run bench` ends with: every target of issue 15, its measure, its baseline, met or MISSED. */
import type { Run } from './common.js';

interface Line {
  text: string;
  verdict: string;
}

export class Targets {
  private readonly lines: Line[] = [];

  constructor(private readonly size: string) {}

  /** `r` against `base` (both wall times measured in this run): met when r / base ≤ max. */
  ratio(name: string, r: Run, base: Run, max: number): void {
    const x = r.seconds / base.seconds;
    this.lines.push({
      text: `${name}: ${r.seconds.toFixed(2)} s / ${base.seconds.toFixed(2)} s = ${x.toFixed(2)}`,
      verdict: `≤ ${max.toFixed(2)}: ${x <= max ? 'met' : 'MISSED'}`,
    });
  }

  /** A ratio where more is better (throughput): met when ≥ min. */
  throughput(name: string, x: number, min: number): void {
    this.lines.push({
      text: `${name} = ${x.toFixed(2)}`,
      verdict: `≥ ${min.toFixed(2)}: ${x >= min ? 'met' : 'MISSED'}`,
    });
  }

  limit(name: string, value: number, max: number, unit: string): void {
    this.lines.push({
      text: `${name}: ${value.toFixed(value < 100 ? 1 : 0)} ${unit}`,
      verdict: `≤ ${max} ${unit}: ${value <= max ? 'met' : 'MISSED'}`,
    });
  }

  info(name: string, x: number, why: string): void {
    this.lines.push({ text: `${name} = ${x.toFixed(2)}`, verdict: `(informational: ${why})` });
  }

  print(): void {
    console.log(`\ntargets (issue 15) at ${this.size}, each beside its baseline measured in this run:`);
    for (const l of this.lines) console.log(`  ${l.text}  ${l.verdict}`);
  }
}
