/**
 * systemd's notification protocol (sd_notify): READY=1, WATCHDOG=1, STATUS=..., STOPPING=1. Node cannot send on a
 * Unix datagram socket without a native addon, so the messages go through `systemd-notify` (the unit sets
 * NotifyAccess=all so that systemd takes them from this child process). Outside systemd ($NOTIFY_SOCKET unset) it
 * does nothing. An interface, so tests can record what would be sent.
 */
import { execFile } from 'node:child_process';

export interface Notifier {
  notify(fields: Record<string, string>): void;
}

export const nullNotifier: Notifier = { notify: () => undefined };

export function systemdNotifier(env: NodeJS.ProcessEnv = process.env): Notifier {
  if (!env.NOTIFY_SOCKET) return nullNotifier;
  return {
    notify(fields) {
      const args = [`--pid=${process.pid}`];
      for (const [k, v] of Object.entries(fields)) {
        if (k === 'READY' && v === '1') args.push('--ready');
        else if (k === 'STATUS') args.push(`--status=${v.replace(/\n/g, ' ').slice(0, 200)}`);
        else args.push(`${k}=${v.replace(/\n/g, ' ')}`);
      }
      execFile('systemd-notify', args, { timeout: 5000 }, () => undefined);
    },
  };
}

/** The watchdog interval systemd asks for ($WATCHDOG_USEC), or null. */
export function watchdogMs(env: NodeJS.ProcessEnv = process.env): number | null {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return null;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) return null;
  return usec / 1000;
}
