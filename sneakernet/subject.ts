/**
 * The artifact key: `name@version`, the in-toto subject name of an artifact in the statement, and the one spelling
 * of "which artifact" everywhere else (refusals, audit details, receipts, placements).
 */
export function subjectName(a: { readonly name: string; readonly version: string }): string {
  return `${a.name}@${a.version}`;
}
