/**
 * What the appliance proof reads inside the guest, through the guest agent only (the image has no network device):
 * `ecluse status --json`, the Glance API on loopback (fetched by the guest's own node), the daemon's journal entries
 * (`journalctl -u ecluse-daemon -o json`) and the self-update installer's (`-t ecluse-update`), the audit log (`ecluse
 * audit export`), the daemon's systemd state. Waiting is by polling, since every call into
 * a guest under software emulation takes a second or more.
 */
import type { Vm } from './vm.js';

export const MINUTE = 60_000;
export const HOME = '/var/lib/ecluse';

export interface GuestStatus {
  state: string;
  message: string;
  progress: { bundle: string; volume: string | null; bytesDone: number; bytesTotal: number } | null;
  waiting: Array<{ bundle: string; have: string[]; missing: string[]; message: string }>;
  last: { outcome: string; bundle: string | null; code: string | null; message: string; media: string | null } | null;
  sticks?: Array<{ device: string; state: string; message: string; usb: { serial: string | null } }>;
}

export interface GuestImage {
  id: string;
  name: string;
  status: string;
  size: number;
  checksum?: string;
}

export type JournalEntry = Record<string, string>;

/** One event of the audit log as `ecluse audit export` carries it out (events.jsonl). */
export interface AuditEntry {
  index: number;
  seq: number;
  at: string;
  kind: string;
  outcome: string;
  code: string | null;
  message: string;
  bundle_id: string | null;
  artifact: string | null;
  details: string;
}

/** Runs the ecluse command line in the guest as the user ecluse (the owner of the station's home). */
export const AS_ECLUSE = 'setpriv --reuid=ecluse --regid=ecluse --init-groups /usr/bin/ecluse';

export async function until<T>(what: string, f: () => Promise<T | null>, timeoutMs = 5 * MINUTE): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== null) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Times each named step of the proof (whole seconds), printing each as it ends; `times` for the summary. */
export function stopwatch(): {
  times: Record<string, number>;
  timed: <T>(what: string, f: () => Promise<T> | T) => Promise<T>;
} {
  const times: Record<string, number> = {};
  const timed = async <T>(what: string, f: () => Promise<T> | T): Promise<T> => {
    const t = Date.now();
    try {
      return await f();
    } finally {
      times[what] = Math.round((Date.now() - t) / 1000);
      console.log(`appliance: ${what} took ${times[what]} s`);
    }
  };
  return { times, timed };
}

export class Guest {
  constructor(readonly vm: Vm) {}

  /** `ecluse status --json` as root (reads the status file the daemon keeps), or null when it fails. */
  async status(): Promise<GuestStatus | null> {
    const r = await this.vm.exec(['/usr/bin/ecluse', '--home', HOME, 'status', '--json']);
    if (r.code !== 0) return null;
    return (JSON.parse(r.stdout) as { status: GuestStatus }).status;
  }

  /**
   * The status file itself (what `ecluse status` reads), with `cat`: a node process started in the guest under
   * software emulation takes several seconds, too slow to catch a copy under way.
   */
  async statusFile(): Promise<GuestStatus | null> {
    const r = await this.vm.exec(['/bin/cat', `${HOME}/daemon/status.json`]);
    if (r.code !== 0) return null;
    try {
      return JSON.parse(r.stdout) as GuestStatus;
    } catch {
      return null;
    }
  }

  /** Waits until the status file satisfies `ok`; returns it. */
  untilStatus(what: string, ok: (s: GuestStatus) => boolean, timeoutMs = 5 * MINUTE): Promise<GuestStatus> {
    return until(
      what,
      async () => {
        const s = await this.statusFile();
        return s && ok(s) ? s : null;
      },
      timeoutMs,
    );
  }

  /** GET /v2/images from inside the guest (ecluse-serve listens on 127.0.0.1:9292 only). */
  async images(): Promise<GuestImage[]> {
    const r = await this.vm.exec([
      '/usr/bin/node',
      '-e',
      'fetch("http://127.0.0.1:9292/v2/images").then((r) => r.text()).then((t) => process.stdout.write(t))',
    ]);
    if (r.code !== 0) throw new Error(`GET /v2/images in the guest failed: ${r.stderr}`);
    return (JSON.parse(r.stdout) as { images: GuestImage[] }).images;
  }

  /** The daemon's journal entries (every boot of the service), oldest first. */
  async journal(): Promise<JournalEntry[]> {
    const r = await this.vm.sh('journalctl -u ecluse-daemon -o json --no-pager');
    return r.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as JournalEntry);
  }

  /** The journal entries of one event. */
  async events(event: string): Promise<JournalEntry[]> {
    return (await this.journal()).filter((e) => e.ECLUSE_EVENT === event);
  }

  /** The self-update installer's journal entries (`journalctl -t ecluse-update -o json`), oldest first. */
  async updateJournal(): Promise<JournalEntry[]> {
    const r = await this.vm.sh('journalctl -t ecluse-update -o json --no-pager');
    return r.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as JournalEntry);
  }

  /**
   * The station's audit log, read as an operator carries it out: `ecluse audit export` (as the user ecluse, into a
   * fresh folder that is removed afterwards), then its events.jsonl. Each call appends its own `audit.exported`.
   */
  async audit(): Promise<AuditEntry[]> {
    const dir = `/tmp/audit-${Date.now()}-${Math.floor(Math.random() * 1e6)}`;
    const r = await this.vm.sh(
      `${AS_ECLUSE} --home ${HOME} audit export --to ${dir} --json >/dev/null && cat ${dir}/events.jsonl; ` +
        `rc=$?; rm -rf ${dir}; exit $rc`,
    );
    if (r.code !== 0) throw new Error(`ecluse audit export in the guest failed: ${r.stderr}`);
    return r.stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as AuditEntry);
  }

  /** systemd's view of a unit: ActiveState, SubState, MainPID, NRestarts... */
  async unit(name: string): Promise<Record<string, string>> {
    const r = await this.vm.sh(`systemctl show -p ActiveState,SubState,MainPID,NRestarts,Result ${name}`);
    return Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  /** The mount point of the first filesystem of the stick with this USB serial, once mounted, else null. */
  async mountOf(serial: string): Promise<string | null> {
    const r = await this.vm.sh(
      `for d in /dev/disk/by-id/usb-*${serial}*; do [ -e "$d" ] && findmnt -rn -o TARGET,FSTYPE,OPTIONS "$(readlink -f "$d")"; done; true`,
    );
    const line = r.stdout.trim().split('\n')[0] ?? '';
    return line === '' ? null : line;
  }

  /** The first installer journal entry after the first `after` ones whose event is one of `events` (waits for it). */
  updateEvent(events: string[], after: number): Promise<JournalEntry> {
    return until(
      `one of ${events.join(', ')}`,
      async () => (await this.updateJournal()).slice(after).find((x) => events.includes(x.ECLUSE_EVENT ?? '')) ?? null,
      10 * MINUTE,
    );
  }

  /** The audit log's events from index `after` on, once they hold one of each kind in `kinds` (waits for them). */
  audited(kinds: string[], after: number): Promise<AuditEntry[]> {
    return until(
      `${kinds.join(', ')} in the audit log`,
      async () => {
        const events = (await this.audit()).filter((e) => e.index >= after);
        return kinds.every((k) => events.some((e) => e.kind === k)) ? events : null;
      },
      5 * MINUTE,
    );
  }

  /** The version of the ecluse package dpkg has installed. */
  async installedVersion(): Promise<string> {
    return (await this.vm.exec(['dpkg-query', '-W', '-f', '${Version}', 'ecluse'])).stdout;
  }
}
