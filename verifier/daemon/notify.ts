/**
 * systemd's notification protocol (sd_notify(3)): READY=1, WATCHDOG=1, STATUS=..., STOPPING=1, newline-separated in
 * one datagram sent from the main process to $NOTIFY_SOCKET (so the unit can say NotifyAccess=main). Outside
 * systemd ($NOTIFY_SOCKET unset) it does nothing. An interface, so tests can record what would be sent.
 */
import { assertSocketPath, datagramSender } from './unix-datagram.js';

export interface Notifier {
  notify(fields: Record<string, string>): void;
  close(): void;
}

export const nullNotifier: Notifier = { notify: () => undefined, close: () => undefined };

/** `READY=1\nSTATUS=...`: one assignment a line, so a value's own newlines become spaces. */
export function notifyMessage(fields: Record<string, string>): Buffer {
  const lines = Object.entries(fields).map(([k, v]) => `${k}=${v.replace(/[\r\n]+/g, ' ')}`);
  return Buffer.from(lines.join('\n'), 'utf8');
}

export function systemdNotifier(env: NodeJS.ProcessEnv = process.env): Notifier {
  const socket = env.NOTIFY_SOCKET;
  if (!socket) return nullNotifier;
  assertSocketPath(socket);
  const sender = datagramSender();
  return {
    // Like sd_notify's callers, the daemon goes on when systemd is not listening: there is nobody to tell.
    notify: (fields) => void sender.send(socket, notifyMessage(fields)),
    close: () => sender.close(),
  };
}

/** The watchdog interval systemd asks for ($WATCHDOG_USEC), or null. */
export function watchdogMs(env: NodeJS.ProcessEnv = process.env): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) return null;
  return usec / 1000;
}
