/**
 * The daemon's log. Under systemd (stdout is the journal stream: journal.ts) every event is one journal entry sent
 * over journald's native protocol, with structured fields (ECLUSE_EVENT, ECLUSE_BUNDLE, ECLUSE_ARTIFACT, ECLUSE_CODE,
 * ECLUSE_MEDIA, ECLUSE_VOLUME, ...): `journalctl -u ecluse-daemon -o json`, or `journalctl ECLUSE_CODE=E_SIGNATURE`.
 * Anywhere else it is one JSON object per line on stdout, e.g.
 *   {"at":"...","level":"info","event":"import.accepted","bundle":"…","sequence":3,"message":"…"}
 * Should the journal socket refuse an entry (journald restarting, an entry too large), that entry goes to stdout as
 * a JSON line with a syslog priority prefix (`<4>`), which journald's stream reader still takes.
 */
import type { DaemonLog } from './event.js';
import { encodeJournalEntry, journalFields, journalSocket, PRIORITY, stdoutIsJournal } from './journal.js';
import { assertSocketPath, datagramSender, type DatagramSender } from './unix-datagram.js';

export type { DaemonEvent, DaemonLog, Level } from './event.js';

/** One JSON object per line; with `priorityPrefix`, each line starts with `<N>` for journald's stream reader. */
export function jsonLog(out: NodeJS.WritableStream = process.stdout, priorityPrefix = false): DaemonLog {
  return (e) => {
    const level = e.level ?? 'info';
    const line = JSON.stringify({ at: new Date().toISOString(), level, ...e });
    out.write(`${priorityPrefix ? `<${PRIORITY[level]}>` : ''}${line}\n`);
  };
}

/** Entries sent to the journal socket at `socket`; what it refuses goes to `fallback`, noted once. */
export function journalLog(sender: DatagramSender, socket: string, fallback: DaemonLog): DaemonLog {
  let noted = false;
  return (e) => {
    const why = sender.send(socket, encodeJournalEntry(journalFields(e)));
    if (why === null) return;
    if (!noted) {
      noted = true;
      fallback({
        event: 'daemon.journal',
        level: 'warning',
        message: `the journal socket ${socket} refused an entry (${why}); such entries are written to stdout`,
      });
    }
    fallback(e);
  };
}

/** The log for `ecluse daemon`: native journal entries under systemd, JSON lines otherwise. */
export function daemonLog(
  env: NodeJS.ProcessEnv = process.env,
  out: NodeJS.WritableStream = process.stdout,
): { log: DaemonLog; close(): void } {
  if (!stdoutIsJournal(env)) return { log: jsonLog(out), close: () => undefined };
  const socket = journalSocket(env);
  assertSocketPath(socket);
  const sender = datagramSender();
  return { log: journalLog(sender, socket, jsonLog(out, true)), close: () => sender.close() };
}
