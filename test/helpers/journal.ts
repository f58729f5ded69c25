/**
 * Stand-ins for journald and systemd's notification socket: datagram sockets bound in a temporary folder that record
 * what arrives, and a decoder of journald's native protocol written from its documentation (independent of the
 * encoder under test).
 */
import fs from 'node:fs';
import path from 'node:path';
import { datagramReceiver } from '../../verifier/daemon/unix-datagram.js';

/** Decodes one native-protocol datagram: `NAME=value\n`, or `NAME\n<u64 LE size><bytes>\n`. */
export function decodeJournalDatagram(buf: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < buf.length) {
    const nl = buf.indexOf(0x0a, i);
    if (nl < 0) throw new Error(`unterminated field at byte ${i}`);
    const line = buf.subarray(i, nl).toString('utf8');
    const eq = line.indexOf('=');
    if (eq >= 0) {
      out.set(line.slice(0, eq), line.slice(eq + 1));
      i = nl + 1;
    } else {
      const size = Number(buf.readBigUInt64LE(nl + 1));
      const start = nl + 9;
      out.set(line, buf.subarray(start, start + size).toString('utf8'));
      if (buf[start + size] !== 0x0a) throw new Error(`binary field ${line} is not followed by a newline`);
      i = start + size + 1;
    }
  }
  return out;
}

export interface Recorder {
  path: string;
  datagrams: Buffer[];
  /** Resolves once `pred` holds for the datagrams received so far. */
  until(pred: (d: Buffer[]) => boolean, what: string, timeoutMs?: number): Promise<void>;
  close(): void;
}

export function recorder(dir: string, name: string): Recorder {
  const file = path.join(dir, name);
  const datagrams: Buffer[] = [];
  const r = datagramReceiver(file, (d) => datagrams.push(d));
  return {
    path: file,
    datagrams,
    async until(pred, what, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      while (!pred(datagrams)) {
        if (Date.now() > end) {
          throw new Error(
            `timed out waiting for ${what}; got ${datagrams.map((d) => JSON.stringify(String(d))).join(', ')}`,
          );
        }
        await new Promise((res) => setTimeout(res, 20));
      }
    },
    close() {
      r.close();
      fs.rmSync(file, { force: true });
    },
  };
}

/** `JOURNAL_STREAM` for a file a child's stdout will be: `<device>:<inode>`, as systemd sets it. */
export function journalStreamOf(fd: number): string {
  const st = fs.fstatSync(fd, { bigint: true });
  return `${st.dev}:${st.ino}`;
}
