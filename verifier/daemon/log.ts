/**
 * The daemon's journal: one JSON object per line on stdout, e.g.
 *   {"at":"...","event":"import.accepted","bundle":"…","station":"outside-1","sequence":3,"code":null,"message":"…"}
 * Under systemd (JOURNAL_STREAM set) each line starts with a syslog priority prefix (`<3>` error, `<4>` warning,
 * `<6>` info) that journald turns into PRIORITY; `journalctl -u ecluse-daemon -o cat | jq` reads the fields.
 */
export type Level = 'info' | 'warning' | 'error';

export interface DaemonEvent {
  event: string;
  message: string;
  level?: Level;
  bundle?: string | null;
  artifact?: string | null;
  code?: string | null;
  media?: string | null;
  [field: string]: unknown;
}

export type DaemonLog = (e: DaemonEvent) => void;

const PRIORITY: Record<Level, number> = { error: 3, warning: 4, info: 6 };

export function jsonLog(out: NodeJS.WritableStream = process.stdout, env: NodeJS.ProcessEnv = process.env): DaemonLog {
  const prefix = Boolean(env.JOURNAL_STREAM);
  return (e) => {
    const level = e.level ?? 'info';
    const line = JSON.stringify({ at: new Date().toISOString(), level, ...e });
    out.write(`${prefix ? `<${PRIORITY[level]}>` : ''}${line}\n`);
  };
}
