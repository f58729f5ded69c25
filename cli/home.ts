/** The station's state folder: `--home`, else `ECLUSE_HOME`, else `$XDG_DATA_HOME/ecluse` (~/.local/share/ecluse). */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EcluseError } from '../sneakernet/errors.js';

export function resolveHome(option: string | undefined): string {
  const from = option ? '--home' : process.env.ECLUSE_HOME ? 'ECLUSE_HOME' : null;
  let home: string;
  if (option) home = path.resolve(option);
  else if (process.env.ECLUSE_HOME) home = path.resolve(process.env.ECLUSE_HOME);
  else home = path.join(process.env.XDG_DATA_HOME || path.join(os.homedir(), '.local', 'share'), 'ecluse');
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(home);
  } catch {
    st = undefined; // not there yet: `site init` / `relay add` create it; other commands say it is not set up
  }
  if (st && !st.isDirectory()) {
    throw new EcluseError(
      'E_USAGE',
      `${from ?? 'the station home'} ${home} is a file, not a folder: give the station's state folder (e.g. /var/lib/ecluse)`,
      { check: 'home' },
    );
  }
  return home;
}
