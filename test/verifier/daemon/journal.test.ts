/**
 * The journal's native protocol and sd_notify, over real Unix datagram sockets bound in a temporary folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeJournalEntry, journalFields, stdoutIsJournal } from '../../../verifier/daemon/journal.js';
import { daemonLog, journalLog, type DaemonEvent } from '../../../verifier/daemon/log.js';
import { notifyMessage, systemdNotifier } from '../../../verifier/daemon/notify.js';
import { datagramSender } from '../../../verifier/daemon/unix-datagram.js';
import { decodeJournalDatagram, journalStreamOf, recorder, type Recorder } from '../../helpers/journal.js';

let dir: string;
const open: Array<{ close(): void }> = [];
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-journal-'));
});
afterEach(() => {
  for (const o of open.splice(0)) o.close();
  fs.rmSync(dir, { recursive: true, force: true });
});
function listen(name: string): Recorder {
  const r = recorder(dir, name);
  open.push(r);
  return r;
}

describe('journald native protocol', () => {
  it('sends the exact datagram: NAME=value lines, and the binary-safe form for a value with newlines', async () => {
    const journal = listen('socket');
    const sender = datagramSender();
    open.push(sender);
    const fields = [
      ['MESSAGE', 'line one\nline two — é'],
      ['PRIORITY', '4'],
      ['ECLUSE_CODE', 'E_SIGNATURE'],
      ['ECLUSE_EMPTY', ''],
    ] as const;
    const message = Buffer.from('line one\nline two — é', 'utf8');
    const expected = Buffer.concat([
      Buffer.from('MESSAGE\n'),
      Buffer.from([message.length, 0, 0, 0, 0, 0, 0, 0]),
      message,
      Buffer.from('\nPRIORITY=4\nECLUSE_CODE=E_SIGNATURE\nECLUSE_EMPTY=\n'),
    ]);
    expect(encodeJournalEntry(fields)).toEqual(expected);
    expect(sender.send(journal.path, encodeJournalEntry(fields))).toBeNull();
    await journal.until((d) => d.length === 1, 'the entry');
    expect(journal.datagrams[0]).toEqual(expected);
    expect(Object.fromEntries(decodeJournalDatagram(journal.datagrams[0] as Buffer))).toEqual(
      Object.fromEntries(fields),
    );
  });

  it('refuses field names journald would drop', () => {
    for (const bad of ['_PID', 'lower', '1ST', 'A-B', 'X'.repeat(65), '']) {
      expect(() => encodeJournalEntry([[bad, 'v']]), bad).toThrow(/invalid journal field name/);
    }
  });

  it('maps a daemon event to MESSAGE, PRIORITY, SYSLOG_IDENTIFIER and ECLUSE_* fields', () => {
    const e: DaemonEvent = {
      event: 'import.refused',
      level: 'warning',
      bundle: '6f1c2a9e-0000-4000-8000-000000000000',
      artifact: 'debian-13@20261101',
      code: 'E_SIGNATURE',
      media: '/run/ecluse/media/sdb1',
      volume: 'vol-0002.tar',
      sequence: 7,
      missing: ['vol-0003.tar'],
      mediaRoots: ['/run/ecluse/media'],
      identity: null,
      message: 'refused',
    };
    expect(Object.fromEntries(journalFields(e))).toEqual({
      MESSAGE: 'refused',
      PRIORITY: '4',
      SYSLOG_IDENTIFIER: 'ecluse',
      ECLUSE_EVENT: 'import.refused',
      ECLUSE_BUNDLE: '6f1c2a9e-0000-4000-8000-000000000000',
      ECLUSE_ARTIFACT: 'debian-13@20261101',
      ECLUSE_CODE: 'E_SIGNATURE',
      ECLUSE_MEDIA: '/run/ecluse/media/sdb1',
      ECLUSE_VOLUME: 'vol-0002.tar',
      ECLUSE_SEQUENCE: '7',
      ECLUSE_MISSING: '["vol-0003.tar"]',
      ECLUSE_MEDIA_ROOTS: '["/run/ecluse/media"]',
    });
    expect(journalFields({ event: 'x', message: 'm', level: 'error' })).toContainEqual(['PRIORITY', '3']);
  });

  it('takes stdout for the journal only when $JOURNAL_STREAM names that very stream', () => {
    const fd = fs.openSync(path.join(dir, 'out'), 'w');
    const other = fs.openSync(path.join(dir, 'other'), 'w');
    try {
      expect(stdoutIsJournal({ JOURNAL_STREAM: journalStreamOf(fd) }, fd)).toBe(true);
      expect(stdoutIsJournal({ JOURNAL_STREAM: journalStreamOf(other) }, fd)).toBe(false);
      expect(stdoutIsJournal({ JOURNAL_STREAM: 'garbage' }, fd)).toBe(false);
      expect(stdoutIsJournal({}, fd)).toBe(false);
    } finally {
      fs.closeSync(fd);
      fs.closeSync(other);
    }
    // Outside systemd: JSON lines, even with an inherited $JOURNAL_STREAM that is not this stdout.
    const out = new PassThrough();
    const lines: string[] = [];
    out.on('data', (d: Buffer) => lines.push(d.toString()));
    const log = daemonLog({ JOURNAL_STREAM: '1:1' }, out);
    log.log({ event: 'daemon.started', message: 'watching' });
    log.close();
    expect(JSON.parse(lines.join(''))).toMatchObject({ event: 'daemon.started', level: 'info', message: 'watching' });
  });

  it('sends each event as one entry, and what the socket refuses to stdout with a priority prefix', async () => {
    const journal = listen('socket');
    const sender = datagramSender();
    open.push(sender);
    const fallback: DaemonEvent[] = [];
    const log = journalLog(sender, journal.path, (e) => fallback.push(e));
    log({ event: 'import.accepted', bundle: 'b1', message: 'bundle out-1 #3 imported' });
    log({ event: 'import.refused', level: 'warning', bundle: 'b2', code: 'E_DIGEST', message: 'two\nlines' });
    await journal.until((d) => d.length === 2, 'two entries');
    const entries = journal.datagrams.map((d) => Object.fromEntries(decodeJournalDatagram(d)));
    expect(entries[0]).toMatchObject({ ECLUSE_EVENT: 'import.accepted', ECLUSE_BUNDLE: 'b1', PRIORITY: '6' });
    expect(entries[1]).toMatchObject({ ECLUSE_CODE: 'E_DIGEST', MESSAGE: 'two\nlines', PRIORITY: '4' });
    expect(fallback).toEqual([]);

    const gone = journalLog(sender, path.join(dir, 'no-journald'), (e) => fallback.push(e));
    gone({ event: 'a', message: 'first' });
    gone({ event: 'b', message: 'second' });
    expect(fallback.map((e) => e.event)).toEqual(['daemon.journal', 'a', 'b']);
    expect(fallback[0]?.message).toContain('ENOENT');
  });
});

describe('sd_notify', () => {
  it('sends READY, STATUS, WATCHDOG and STOPPING from this process to $NOTIFY_SOCKET', async () => {
    const systemd = listen('notify');
    const n = systemdNotifier({ NOTIFY_SOCKET: systemd.path });
    open.push(n);
    n.notify({ READY: '1', STATUS: 'idle: insert\na medium' });
    n.notify({ WATCHDOG: '1' });
    n.notify({ STOPPING: '1' });
    await systemd.until((d) => d.length === 3, 'three notifications');
    expect(systemd.datagrams.map(String)).toEqual([
      'READY=1\nSTATUS=idle: insert a medium',
      'WATCHDOG=1',
      'STOPPING=1',
    ]);
    expect(String(notifyMessage({ STATUS: 'a\r\nb' }))).toBe('STATUS=a b');
  });

  it('does nothing outside systemd, goes on when nobody listens, and says abstract sockets are unsupported', () => {
    systemdNotifier({}).notify({ READY: '1' });
    const n = systemdNotifier({ NOTIFY_SOCKET: path.join(dir, 'nobody') });
    n.notify({ READY: '1' });
    n.close();
    expect(() => systemdNotifier({ NOTIFY_SOCKET: '@/org/freedesktop/systemd1/notify' })).toThrow(/abstract/);
  });
});
