/**
 * Orders release versions by Debian's rule (`dpkg --compare-versions`, the upstream-version part): the string is read
 * as alternating non-digit and digit runs; digit runs compare as numbers; non-digit runs compare character by
 * character with `~` before everything (even the end: 1.0~rc1 < 1.0), then the end, then letters, then other
 * characters. So 1.2 < 1.2.1 < 1.10, 20261015 < 20261101, 1.0~rc1 < 1.0.
 */
function weight(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  if (/[A-Za-z]/.test(c)) return c.charCodeAt(0);
  return c.charCodeAt(0) + 256;
}

export function compareVersions(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit run.
    while ((i < a.length && !/[0-9]/.test(a.charAt(i))) || (j < b.length && !/[0-9]/.test(b.charAt(j)))) {
      const ca = i < a.length && !/[0-9]/.test(a.charAt(i)) ? a.charAt(i) : undefined;
      const cb = j < b.length && !/[0-9]/.test(b.charAt(j)) ? b.charAt(j) : undefined;
      const d = weight(ca) - weight(cb);
      if (d !== 0) return d < 0 ? -1 : 1;
      if (ca !== undefined) i++;
      if (cb !== undefined) j++;
    }
    // Digit run, compared as a number of any length.
    let na = '';
    let nb = '';
    while (i < a.length && /[0-9]/.test(a.charAt(i))) na += a.charAt(i++);
    while (j < b.length && /[0-9]/.test(b.charAt(j))) nb += b.charAt(j++);
    const d = BigInt(na || '0') - BigInt(nb || '0');
    if (d !== 0n) return d < 0n ? -1 : 1;
  }
  return 0;
}
