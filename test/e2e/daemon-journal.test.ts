/**
 * The daemon under systemd's eyes: its stdout is "the journal stream" ($JOURNAL_STREAM names it, as systemd sets
 * it), so every event goes to the journal socket as a native entry with ECLUSE_* fields, and sd_notify messages go
 * from the daemon's own process to $NOTIFY_SOCKET. First against stand-in sockets that record every datagram, then
 * against a real systemd-journald (in a journal namespace of its own) read back with journalctl. Real ext4 media,
 * loop-mounted: needs root, like daemon.test.ts.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decodeJournalDatagram, journalStreamOf, recorder, type Recorder } from '../helpers/journal.js';
import { MediaBench, mediaSkipReason, startDaemon, which, type DaemonProcess } from '../helpers/media.js';
import { bundleOn, copyMedia, flipByte, makeKeys, tmpDir, world, type Keys, type World } from '../helpers/world.js';

const MiB = 1024 * 1024;
const JOURNALD = ['/usr/lib/systemd/systemd-journald', '/lib/systemd/systemd-journald'].find((f) => fs.existsSync(f));
const journaldSkip = !JOURNALD
  ? 'systemd-journald is not installed (apt-get install systemd)'
  : !which('journalctl')
    ? 'journalctl is missing'
    : null;
if (mediaSkipReason) console.warn(`daemon journal tests skipped: ${mediaSkipReason}`);
else if (journaldSkip) console.warn(`the real-journald test is skipped: ${journaldSkip}`);

describe.skipIf(mediaSkipReason !== null)('ecluse daemon logging to the journal and notifying systemd', () => {
  let keys: Keys;
  let keysDir: string;
  const worlds: World[] = [];
  const bench = new MediaBench();
  const cleanups: Array<() => void | Promise<void>> = [];
  let daemon: DaemonProcess | null = null;

  beforeAll(async () => {
    keysDir = tmpDir('ecluse-journal-keys-');
    keys = await makeKeys(keysDir);
  });
  afterEach(async () => {
    await daemon?.stop();
    daemon = null;
    await bench.cleanup();
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(() => {
    for (const w of worlds) w.cleanup();
    fs.rmSync(keysDir, { recursive: true, force: true });
  });

  /** A world with a good stick and a hostile one (a flipped byte in its volume: E_DIGEST). */
  async function sticks() {
    const w = await world({ keys });
    worlds.push(w);
    const mediaRoot = w.path('run-media');
    fs.mkdirSync(mediaRoot);
    await w.addImage('img', '1.0', 1 * MiB);
    const good = w.path('good');
    await w.exportTo(good);
    const bad = copyMedia(good, w.path('bad'));
    flipByte(bundleOn(bad).volume(1), 512 + 4096);
    return { w, mediaRoot, good, bad, id: bundleOn(good).id };
  }

  /** Starts the daemon with stdout on a file that $JOURNAL_STREAM names, as systemd does with its stream socket. */
  function startUnderSystemd(w: World, mediaRoot: string, env: Record<string, string>) {
    const stdoutFile = w.path('daemon-stdout');
    const fd = fs.openSync(stdoutFile, 'w');
    daemon = startDaemon(w, mediaRoot, { stdout: fd, env: { JOURNAL_STREAM: journalStreamOf(fd), ...env } });
    fs.closeSync(fd);
    return { d: daemon, stdoutFile };
  }

  it('sends every event as a native journal entry with ECLUSE_* fields, and notifies from its own process', async () => {
    const { w, mediaRoot, good, bad, id } = await sticks();
    const sockets = tmpDir('ecluse-sockets-');
    cleanups.push(() => fs.rmSync(sockets, { recursive: true, force: true }));
    const journal: Recorder = recorder(sockets, 'journal');
    const systemd: Recorder = recorder(sockets, 'notify');
    cleanups.push(
      () => journal.close(),
      () => systemd.close(),
    );
    const entries = () => journal.datagrams.map((d) => Object.fromEntries(decodeJournalDatagram(d)));
    const has = (pred: (e: Record<string, string>) => boolean) => () => entries().some(pred);

    const { d, stdoutFile } = startUnderSystemd(w, mediaRoot, {
      ECLUSE_JOURNAL_SOCKET: journal.path,
      NOTIFY_SOCKET: systemd.path,
      WATCHDOG_USEC: '300000',
    });
    await journal.until(
      has((e) => e.ECLUSE_EVENT === 'daemon.started'),
      'daemon.started',
    );
    await systemd.until((n) => n.some((m) => String(m).startsWith('READY=1\nSTATUS=')), 'READY=1');
    await bench.insert(w, 'ext4', bad, mediaRoot, 'hostile');
    await journal.until(
      has((e) => e.ECLUSE_EVENT === 'import.refused'),
      'the refusal',
    );
    await bench.insert(w, 'ext4', good, mediaRoot, 'good');
    await journal.until(
      has((e) => e.ECLUSE_EVENT === 'import.accepted'),
      'the import',
    );

    const refused = entries().find((e) => e.ECLUSE_EVENT === 'import.refused');
    expect(refused).toMatchObject({
      ECLUSE_BUNDLE: id,
      ECLUSE_CODE: 'E_DIGEST',
      ECLUSE_MEDIA: path.join(mediaRoot, 'hostile'),
      PRIORITY: '4',
      SYSLOG_IDENTIFIER: 'ecluse',
    });
    expect(refused?.MESSAGE).toMatch(/^E_DIGEST: /);
    expect(entries().find((e) => e.ECLUSE_EVENT === 'image.promoted')).toMatchObject({
      ECLUSE_BUNDLE: id,
      ECLUSE_ARTIFACT: 'img@1.0',
    });
    expect(entries().find((e) => e.ECLUSE_EVENT === 'import.accepted')).toMatchObject({
      ECLUSE_BUNDLE: id,
      ECLUSE_MEDIA: path.join(mediaRoot, 'good'),
      ECLUSE_SEQUENCE: '1',
      PRIORITY: '6',
    });
    expect(entries().find((e) => e.ECLUSE_EVENT === 'media.accepted')?.ECLUSE_IDENTITY).toMatch(/"kernelName":"loop/);

    await systemd.until((n) => n.some((m) => String(m) === 'WATCHDOG=1'), 'a watchdog ping');
    expect(await d.stop()).toBe(0);
    await systemd.until((n) => n.some((m) => String(m) === 'STOPPING=1'), 'STOPPING=1');
    const notes = systemd.datagrams.map(String);
    expect(notes.some((m) => /^STATUS=idle; last: bundle .* imported/.test(m))).toBe(true);
    expect(notes.indexOf('STOPPING=1')).toBeGreaterThan(notes.indexOf('WATCHDOG=1'));
    await journal.until(
      has((e) => e.ECLUSE_EVENT === 'daemon.stopped'),
      'daemon.stopped',
    );
    // Nothing went to stdout: every entry reached the journal socket.
    expect(fs.readFileSync(stdoutFile, 'utf8')).toBe('');
  });

  it.skipIf(journaldSkip !== null)(
    `a real systemd-journald stores the entries, found with journalctl by ECLUSE_BUNDLE and ECLUSE_CODE${
      journaldSkip ? ` (skipped: ${journaldSkip})` : ''
    }`,
    async () => {
      const { w, mediaRoot, good, bad, id } = await sticks();
      // A journal namespace of its own (systemd-journald@.service's way): sockets in /run/systemd/journal.<ns>/,
      // files in /var/log/journal/<machine-id>.<ns>/, nothing of the host's journal touched.
      const ns = `ecluse-test-${process.pid}`;
      const journald: ChildProcess = spawn(JOURNALD as string, [ns], { stdio: 'ignore' });
      const machineId = fs.readFileSync('/etc/machine-id', 'utf8').trim();
      const gone = new Promise((r) => journald.once('exit', r));
      cleanups.push(async () => {
        if (journald.exitCode === null) journald.kill('SIGTERM');
        await gone;
        fs.rmSync(`/run/systemd/journal.${ns}`, { recursive: true, force: true });
        for (const root of ['/var/log/journal', '/run/log/journal']) {
          fs.rmSync(path.join(root, `${machineId}.${ns}`), { recursive: true, force: true });
        }
      });
      const socket = `/run/systemd/journal.${ns}/socket`;
      const until = Date.now() + 10_000;
      while (!fs.existsSync(socket)) {
        if (Date.now() > until || journald.exitCode !== null) throw new Error('systemd-journald did not start');
        await new Promise((r) => setTimeout(r, 50));
      }
      const { d } = startUnderSystemd(w, mediaRoot, { ECLUSE_JOURNAL_SOCKET: socket });
      const query = (...match: string[]) =>
        execFileSync('journalctl', [`--namespace=${ns}`, '-o', 'json', '--no-pager', ...match], { encoding: 'utf8' })
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as Record<string, string>);
      const waitQuery = async (what: string, ...match: string[]) => {
        const end = Date.now() + 30_000;
        for (;;) {
          const found = query(...match);
          if (found.length > 0) return found;
          if (Date.now() > end) throw new Error(`journalctl found no ${what}: ${JSON.stringify(query())}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      await waitQuery('start', 'ECLUSE_EVENT=daemon.started');
      await bench.insert(w, 'ext4', bad, mediaRoot, 'hostile');
      const [refused] = await waitQuery('refusal', 'ECLUSE_CODE=E_DIGEST');
      expect(refused).toMatchObject({ ECLUSE_EVENT: 'import.refused', ECLUSE_BUNDLE: id, PRIORITY: '4' });
      expect(refused?._TRANSPORT).toBe('journal');
      await bench.insert(w, 'ext4', good, mediaRoot, 'good');
      await waitQuery('import', 'ECLUSE_EVENT=import.accepted');
      const ofBundle = query(`ECLUSE_BUNDLE=${id}`).map((e) => e.ECLUSE_EVENT);
      expect(ofBundle).toEqual(expect.arrayContaining(['import.refused', 'image.promoted', 'import.accepted']));
      // The damage is in the volume, and the refusal names the volume, not the artifact it carried (issue 14).
      expect(refused?.ECLUSE_VOLUME).toMatch(/^vol-\d{4}\.tar$/);
      expect(query('ECLUSE_ARTIFACT=img@1.0').map((e) => e.ECLUSE_EVENT)).toEqual(['image.promoted']);
      expect(await d.stop()).toBe(0);
    },
  );
});
