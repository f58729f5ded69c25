/**
 * How every command reports: a human line (or a few) on stdout, or with `--json` exactly one JSON object on stdout.
 * A failure prints `E_CODE: message` on stderr (and `{"ok":false,"code","message"}` on stdout with --json) and sets
 * the exit code: 1 a refusal (a check failed), 2 bad usage, 3 a local failure (see sneakernet/errors.ts).
 */
import { asEcluseError, exitCodeFor } from '../sneakernet/errors.js';

export interface CommandContext {
  json: boolean;
}

export type Human = string | string[];

/** Runs a command body; it returns the JSON result and the human text. */
export async function report<T extends object>(
  ctx: CommandContext,
  body: () => Promise<{ json: T; human: Human }>,
): Promise<void> {
  try {
    const { json, human } = await body();
    if (ctx.json) process.stdout.write(`${JSON.stringify({ ok: true, ...json })}\n`);
    else process.stdout.write(`${(Array.isArray(human) ? human : [human]).join('\n')}\n`);
    process.exitCode = 0;
  } catch (e) {
    const err = asEcluseError(e);
    if (ctx.json) {
      const check = typeof err.context.check === 'string' ? { check: err.context.check } : {};
      process.stdout.write(`${JSON.stringify({ ok: false, code: err.code, message: err.message, ...check })}\n`);
    }
    process.stderr.write(`${err.line()}\n`);
    if (err.code === 'E_INTERNAL' && process.env.ECLUSE_DEBUG)
      process.stderr.write(`${String(err.cause instanceof Error ? err.cause.stack : err.stack)}\n`);
    process.exitCode = exitCodeFor(err.code);
  }
}

export function warn(message: string): void {
  process.stderr.write(`warning: ${message}\n`);
}

/** Sizes as operators read them (one source: sneakernet/units.ts). */
export { formatBytes } from '../sneakernet/units.js';
