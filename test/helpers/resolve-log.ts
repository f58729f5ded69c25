/**
 * An ESM resolve hook that logs every module URL a child `ecluse` resolves (NODE_OPTIONS `--import` of a register
 * script, LOADED_LOG naming the log): how the tests see what a command loads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/** Writes the hook and its register script into `dir`; returns the environment that turns it on, logging to `log`. */
export function resolveLogger(dir: string): (log: string) => Record<string, string> {
  const hooks = path.join(dir, 'hooks.mjs');
  fs.writeFileSync(
    hooks,
    "import fs from 'node:fs';\n" +
      'export async function resolve(specifier, context, next) {\n' +
      '  const r = await next(specifier, context);\n' +
      "  if (process.env.LOADED_LOG && !r.url.startsWith('node:')) fs.appendFileSync(process.env.LOADED_LOG, r.url + '\\n');\n" +
      '  return r;\n' +
      '}\n',
  );
  const register = path.join(dir, 'register.mjs');
  fs.writeFileSync(
    register,
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
  return (log) => ({ NODE_OPTIONS: `--import ${pathToFileURL(register).href}`, LOADED_LOG: log });
}

/** The URLs the hook logged (each once, in order). */
export function loggedUrls(log: string): string[] {
  return [...new Set(fs.readFileSync(log, 'utf8').split('\n').filter(Boolean))];
}
