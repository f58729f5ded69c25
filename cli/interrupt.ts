/**
 * Ctrl-C and SIGTERM during long work of either station (`import`, `verify`, `export`): the first signal aborts the
 * work through an AbortSignal whose reason is an `E_INTERRUPTED` error, so the work unwinds through its own clean-up
 * (an import removes its staging folder and audits the interruption; an export removes its `.partial-*` folder) and the
 * command ends with E_INTERRUPTED's exit status. A second signal stops the process at once: whatever it leaves is
 * removed by the next run of the same command (an import removes staging folders whose process is gone).
 *
 * Usage: `await interruptible({ what: 'import', next: 'run the import again' }, (signal) => runImport(..., signal))`.
 */
import { EcluseError, exitCodeFor } from '../sneakernet/errors.js';

export type StopSignal = 'SIGINT' | 'SIGTERM';
const SIGNALS: readonly StopSignal[] = ['SIGINT', 'SIGTERM'];

export interface InterruptOptions {
  /** What is interrupted, as the operator named it: `import`, `export`. */
  what: string;
  /** What was done about it and what to do next, e.g. `nothing was promoted; run the import again`. */
  next: string;
}

/** The error an interrupted command reports: `E_INTERRUPTED: import interrupted by SIGINT (Ctrl-C): ...`. */
export function interruptedError(o: InterruptOptions, signal: StopSignal): EcluseError {
  const how = signal === 'SIGINT' ? 'SIGINT (Ctrl-C)' : signal;
  return new EcluseError('E_INTERRUPTED', `${o.what} interrupted by ${how}: ${o.next}`, {
    check: 'interrupted',
    signal,
  });
}

/**
 * Runs `work` with SIGINT and SIGTERM turned into an abort of `signal` (reason: the E_INTERRUPTED error); the
 * handlers are removed when the work ends, whatever its outcome.
 */
export async function interruptible<T>(o: InterruptOptions, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const handler = (sig: StopSignal) => {
    if (!controller.signal.aborted) {
      controller.abort(interruptedError(o, sig));
      return;
    }
    // A second signal: the operator wants out now. The next run removes what is left.
    const err = new EcluseError(
      'E_INTERRUPTED',
      `${o.what} stopped at once by a second ${sig}: what it left is removed by the next ${o.what}`,
      { check: 'interrupted', signal: sig },
    );
    process.stderr.write(`${err.line()}\n`);
    process.exit(exitCodeFor(err.code));
  };
  for (const s of SIGNALS) process.on(s, handler);
  try {
    return await work(controller.signal);
  } finally {
    for (const s of SIGNALS) process.off(s, handler);
  }
}
