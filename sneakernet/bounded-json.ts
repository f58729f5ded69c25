/**
 * Untrusted JSON, read within bounds: at most `maxBytes`, valid UTF-8, nested at most `maxDepth` levels (checked
 * before JSON.parse allocates anything). Every JSON document read from media or from a registry goes through here.
 */
import { EcluseError, type ErrorCode } from './errors.js';
import { LIMITS } from './limits.js';

function jsonDepth(text: string): number {
  // Counts bracket nesting outside strings; cheap and bounded, run before JSON.parse allocates anything.
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) max = Math.max(max, ++depth);
    else if (c === 0x7d || c === 0x5d) depth--;
  }
  return max;
}

export interface BoundedJsonOptions {
  /** The code of the refusal (default E_FORMAT: a bundle document). */
  code?: ErrorCode;
  /** The nesting bound (default LIMITS.jsonDepth). */
  maxDepth?: number;
  /** The `check` named in the refusal's context (default `format`). */
  check?: string;
}

/** Parses untrusted JSON within the byte and depth bounds; refuses with E_FORMAT (or `options.code`) naming `what`. */
export function parseBoundedJson(
  bytes: Buffer,
  what: string,
  maxBytes: number,
  options: BoundedJsonOptions = {},
): unknown {
  const code = options.code ?? 'E_FORMAT';
  const maxDepth = options.maxDepth ?? LIMITS.jsonDepth;
  const context = { check: options.check ?? 'format' };
  if (bytes.length > maxBytes) {
    throw new EcluseError(code, `${what} is ${bytes.length} bytes, more than the ${maxBytes} allowed`, context);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new EcluseError(code, `${what} is not valid UTF-8`, context);
  }
  if (jsonDepth(text) > maxDepth) {
    throw new EcluseError(code, `${what} nests deeper than ${maxDepth} levels`, context);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new EcluseError(code, `${what} is not valid JSON: ${(e as Error).message}`, context);
  }
}
