import { EcluseError } from '../sneakernet/errors.js';

/** Parses `30d`, `12h`, `90m`, `45s`, `2w` into milliseconds. */
export function parseDuration(text: string): number {
  const m = /^([0-9]+)\s*([smhdw])$/.exec(text.trim());
  if (!m || !m[1] || !m[2]) throw new EcluseError('E_USAGE', `not a duration: "${text}" (examples: 30d, 12h, 90m)`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[m[2]] ?? 1;
  const ms = Number(m[1]) * unit * 1000;
  if (ms <= 0) throw new EcluseError('E_USAGE', `the duration must be positive: "${text}"`);
  return ms;
}
