/**
 * An import the operator interrupted (Ctrl-C, SIGTERM: E_INTERRUPTED) is not a refusal: the bundle was not judged.
 * It is audited as `import.interrupted`, as the daemon audits an import cut short by a stick being pulled, so the
 * log shows why a bundle that was started is neither accepted nor refused.
 */
import type { EcluseError } from '../sneakernet/errors.js';
import type { Statement } from '../sneakernet/statement.js';
import { appendAudit } from './audit.js';
import type { Site } from './site.js';

export function recordInterruption(
  site: Site,
  err: EcluseError,
  bundle: Statement['predicate'] | null,
  bundleId: string | null,
  media: string,
): void {
  appendAudit(site.db, {
    kind: 'import.interrupted',
    outcome: 'info',
    code: err.code,
    message: err.line(),
    bundleId: bundle?.bundleId ?? bundleId,
    station: bundle?.station ?? null,
    media,
    details: {
      signal: typeof err.context.signal === 'string' ? err.context.signal : null,
      sequence: bundle?.sequence ?? null,
    },
  });
}
