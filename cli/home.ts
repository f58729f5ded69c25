/** The station's state folder: `--home`, else `ECLUSE_HOME`, else `$XDG_DATA_HOME/ecluse` (~/.local/share/ecluse). */
import os from 'node:os';
import path from 'node:path';

export function resolveHome(option: string | undefined): string {
  if (option) return path.resolve(option);
  if (process.env.ECLUSE_HOME) return path.resolve(process.env.ECLUSE_HOME);
  const data = process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share');
  return path.join(data, 'ecluse');
}
