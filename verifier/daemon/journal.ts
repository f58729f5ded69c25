/**
 * journald's native protocol (systemd.journal-fields(7), "Native Journal Protocol"): one datagram per entry on
 * /run/systemd/journal/socket, each field `NAME=value\n`, or, when the value holds a newline,
 * `NAME\n<value length as 64-bit little-endian><value>\n`. Field names are upper-case letters, digits and `_`, at
 * most 64 characters, starting with a letter (a leading `_` is journald's own, trusted fields).
 *
 * A daemon event becomes MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and one ECLUSE_* field per event field, so
 * `journalctl -u ecluse-daemon ECLUSE_CODE=E_SIGNATURE` finds refusals by code and `-o json` shows every field.
 */
import fs from 'node:fs';
import type { DaemonEvent, Level } from './event.js';
import { EcluseError } from '../../sneakernet/errors.js';

export const JOURNAL_SOCKET = '/run/systemd/journal/socket';
export const SYSLOG_IDENTIFIER = 'ecluse';
export const PRIORITY: Record<Level, number> = { error: 3, warning: 4, info: 6 };

export type JournalField = readonly [name: string, value: string];

const FIELD_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;

/** The datagram for one entry; throws on a field name journald would drop. */
export function encodeJournalEntry(fields: readonly JournalField[]): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of fields) {
    if (!FIELD_NAME.test(name)) {
      throw new EcluseError(
        'E_INTERNAL',
        `invalid journal field name ${JSON.stringify(name)} (a bug: report it with this line)`,
      );
    }
    if (value.includes('\n')) {
      const bytes = Buffer.from(value, 'utf8');
      const size = Buffer.alloc(8);
      size.writeBigUInt64LE(BigInt(bytes.length));
      parts.push(Buffer.from(`${name}\n`, 'utf8'), size, bytes, Buffer.from('\n'));
    } else {
      parts.push(Buffer.from(`${name}=${value}\n`, 'utf8'));
    }
  }
  return Buffer.concat(parts);
}

/** `mediaRoots` → `ECLUSE_MEDIA_ROOTS`. */
export function journalFieldName(key: string): string {
  const snake = key
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toUpperCase()
    .replace(/[^A-Z0-9_]/g, '_');
  return `ECLUSE_${snake}`.slice(0, 64);
}

/** The fields of one daemon event: absent and null fields are left out; objects and arrays are JSON. */
export function journalFields(e: DaemonEvent): JournalField[] {
  const level = e.level ?? 'info';
  const out: JournalField[] = [
    ['MESSAGE', e.message],
    ['PRIORITY', String(PRIORITY[level])],
    ['SYSLOG_IDENTIFIER', SYSLOG_IDENTIFIER],
    ['ECLUSE_EVENT', e.event],
  ];
  for (const [key, value] of Object.entries(e)) {
    if (key === 'event' || key === 'message' || key === 'level' || value === null || value === undefined) continue;
    const text =
      typeof value === 'string'
        ? value
        : typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint'
          ? String(value)
          : JSON.stringify(value);
    out.push([journalFieldName(key), text]);
  }
  return out;
}

/**
 * True when stdout is the journal stream systemd connected (`$JOURNAL_STREAM` is `<device>:<inode>` of that
 * stream, and matches file descriptor `fd`): what sd_journal's own check does, so a variable inherited by a child
 * whose output goes elsewhere is not mistaken for the journal.
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const m = /^(\d+):(\d+)$/.exec(env.JOURNAL_STREAM ?? '');
  if (!m?.[1] || !m[2]) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]) && st.ino === BigInt(m[2]);
  } catch {
    return false;
  }
}

/** The socket to send entries to: `$ECLUSE_JOURNAL_SOCKET` (tests) or journald's. */
export function journalSocket(env: NodeJS.ProcessEnv = process.env): string {
  return env.ECLUSE_JOURNAL_SOCKET || JOURNAL_SOCKET;
}
