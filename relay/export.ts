/**
 * `ecluse export`: plan, then write. `planExport` (relay/export-plan.ts) decides everything and writes nothing;
 * `writeBundle` (relay/write-bundle.ts) executes that very plan. `ecluse export --plan` prints the plan; `ecluse
 * export` writes it.
 */
import type { RelayHome } from './catalog.js';
import { planExport, type ExportRequest } from './export-plan.js';
import { writeBundle, type ExportResult, type StatementSigner, type WriteOptions } from './write-bundle.js';

export { planExport, type ExportPlan, type ExportRequest, type PreparedExport } from './export-plan.js';
export { writeBundle, type ExportResult, type StatementSigner, type WriteOptions } from './write-bundle.js';

export async function exportBundle(
  home: RelayHome,
  request: ExportRequest,
  signers: StatementSigner[],
  o: WriteOptions = {},
): Promise<ExportResult> {
  // Chunk lists are counted in the plan only when they are written.
  const counted: ExportRequest = {
    ...request,
    signers: signers.length,
    ...(o.chunks === false ? { noChunks: true } : {}),
  };
  return writeBundle(home, await planExport(home, counted), signers, o);
}
