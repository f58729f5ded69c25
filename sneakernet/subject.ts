import { EcluseError } from './errors.js';

/**
 * The artifact key: `name@version`, the in-toto subject name of an artifact in the statement, and the one spelling
 * of "which artifact" everywhere else (refusals, audit details, receipts, placements).
 */
export function subjectName(a: { readonly name: string; readonly version: string }): string {
  return `${a.name}@${a.version}`;
}

/** `NAME@VERSION` as an operator types it, into its parts (the name is everything before the last `@`). */
export function parseSubjectName(ref: string): { name: string; version: string } {
  const at = ref.lastIndexOf('@');
  if (at <= 0 || at === ref.length - 1) {
    throw new EcluseError('E_USAGE', `name an artifact as NAME@VERSION (e.g. debian-13@20261101), not "${ref}"`, {
      check: 'artifact-name',
    });
  }
  return { name: ref.slice(0, at).normalize('NFC'), version: ref.slice(at + 1) };
}
