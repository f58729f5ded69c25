/**
 * Reads a file an operator wrote (a policy, a feeds list): YAML or JSON (YAML is a superset), bounded in size, no
 * aliases (no billion laughs), duplicate keys refused. Returns the parsed value for a schema to check.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type yamlModule from 'yaml';
import { EcluseError } from './errors.js';
import { unreadableFile } from './input-file.js';

/** The YAML parser, loaded the first time an operator file is read (most commands never read one). */
let loadedYaml: typeof yamlModule | undefined;
function yaml(): typeof yamlModule {
  return (loadedYaml ??= createRequire(import.meta.url)('yaml') as typeof yamlModule);
}

export function readOperatorFile(file: string, maxBytes: number): unknown {
  let text: string;
  try {
    if (fs.statSync(file).size > maxBytes) throw new EcluseError('E_INPUT', `${file} is larger than ${maxBytes} bytes`);
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if (e instanceof EcluseError) throw e;
    throw unreadableFile(file, e);
  }
  try {
    return yaml().parse(text, { maxAliasCount: 0, uniqueKeys: true }) as unknown;
  } catch (e) {
    throw new EcluseError('E_INPUT', `${file} is not valid YAML or JSON: ${(e as Error).message.split('\n')[0] ?? ''}`);
  }
}
