/**
 * The self-update results the audit log holds (`update_results`, listed in db.ts MODULE_SCHEMAS): one row per result
 * file of the root installer (`/var/lib/ecluse-update/results/`, docs/FORMAT.md 4.10) already appended to the audit
 * log, so that each file becomes exactly one audit event, whatever the daemon's restarts. A leaf module: it imports
 * nothing, so db.ts can import it without a cycle; verifier/update-results.ts reads and writes it.
 */
export const UPDATE_RESULTS_SCHEMA = `
CREATE TABLE IF NOT EXISTS update_results (
  name TEXT PRIMARY KEY, -- the result file's name in the installer's results folder
  seq  INTEGER NOT NULL, -- the audit event it became (audit.seq)
  at   TEXT NOT NULL     -- when it was audited
);
`;
