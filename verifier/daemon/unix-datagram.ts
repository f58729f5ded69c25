/**
 * Datagrams on Unix sockets named by a path: journald's native socket and systemd's notification socket. Node's
 * `dgram` has no AF_UNIX, so this wraps unix-dgram (a small native addon, built from source by node-gyp at install,
 * no prebuilt download). The addon is loaded on first use, so a station that never runs under systemd never needs
 * it. Sends are synchronous (sendto(2) on a non-blocking socket): an entry is either queued in the kernel or refused
 * with an errno, never buffered here.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { EcluseError } from '../../sneakernet/errors.js';

/** What unix-dgram offers, as far as écluse uses it. */
interface UnixDgramSocket {
  send(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error & { code?: unknown }) => void): void;
  bind(path: string): void;
  close(): void;
  on(event: 'message', listener: (buf: Buffer) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}
interface UnixDgramModule {
  createSocket(type: 'unix_dgram'): UnixDgramSocket;
}

let addon: UnixDgramModule | null = null;

function unixDgram(): UnixDgramModule {
  if (addon) return addon;
  try {
    addon = createRequire(import.meta.url)('unix-dgram') as UnixDgramModule;
    return addon;
  } catch (e) {
    throw new EcluseError(
      'E_INTERNAL',
      `the unix-dgram addon cannot be loaded (${(e as Error).message}); reinstall with npm ci so that it is built`,
      {},
      { cause: e },
    );
  }
}

/** The errno name (`ENOENT`) of unix-dgram's negative error number, or what it gave. */
function errnoName(code: unknown): string {
  if (typeof code !== 'number') return String(code);
  const name = Object.entries(os.constants.errno).find(([, n]) => n === -code)?.[0];
  return name ?? `errno ${-code}`;
}

export interface DatagramSender {
  /** Sends one datagram to the socket at `path`; returns null when the kernel took it, else why not (`ENOENT`). */
  send(path: string, data: Buffer): string | null;
  close(): void;
}

/** Throws E_USAGE for an abstract socket address (`@name`), which unix-dgram cannot reach. */
export function assertSocketPath(path: string): void {
  if (path.startsWith('@') || path.startsWith('\0')) {
    throw new EcluseError('E_USAGE', `${path}: abstract Unix sockets are not supported; give a socket file path`);
  }
}

/** One unbound datagram socket that sends to any path. */
export function datagramSender(): DatagramSender {
  const socket = unixDgram().createSocket('unix_dgram');
  socket.on('error', () => undefined);
  let open = true;
  return {
    send(path, data) {
      assertSocketPath(path);
      if (!open) return 'closed';
      let outcome: string | null | undefined;
      socket.send(data, 0, data.length, path, (err) => {
        outcome = err ? errnoName(err.code) : null;
      });
      // unix-dgram calls back synchronously; if a later version did not, the datagram was at least handed over.
      return outcome ?? null;
    },
    close() {
      if (!open) return;
      open = false;
      socket.close();
    },
  };
}

/** A socket bound at `path` that hands every datagram to `onMessage` (tests: a stand-in journald or systemd). */
export function datagramReceiver(path: string, onMessage: (data: Buffer) => void): { close(): void } {
  assertSocketPath(path);
  const socket = unixDgram().createSocket('unix_dgram');
  let failure: Error | null = null;
  socket.on('error', (e) => (failure = e));
  socket.on('message', onMessage);
  socket.bind(path);
  if (failure) {
    socket.close();
    throw new EcluseError('E_IO', `cannot bind a datagram socket at ${path}: ${String(failure)}`);
  }
  return { close: () => socket.close() };
}
