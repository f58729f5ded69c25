/** Listening on HOST:PORT for the station's HTTP services (the Glance API, the registry), in the operator's terms. */
import { EcluseError } from '../sneakernet/errors.js';

/** A host as it appears in a URL (an IPv6 address in brackets). */
export function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** Why the server could not listen, in the operator's terms (the address, and what to do: `flag` sets it). */
export function listenError(e: NodeJS.ErrnoException, host: string, port: number, flag = '--listen'): EcluseError {
  const address = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const context = { check: 'listen', address };
  if (e.code === 'EADDRINUSE')
    return new EcluseError(
      'E_ADDRESS_IN_USE',
      `${address} is already in use by another program: stop it, or give another port with ${flag}`,
      context,
      { cause: e },
    );
  if (e.code === 'EACCES')
    return new EcluseError(
      'E_IO',
      `not allowed to listen on ${address}: ports below 1024 need privileges; use a port of 1024 or more`,
      context,
      { cause: e },
    );
  if (e.code === 'EADDRNOTAVAIL' || e.code === 'ENOTFOUND')
    return new EcluseError('E_USAGE', `cannot listen on ${address}: no such address on this machine`, context, {
      cause: e,
    });
  return new EcluseError('E_IO', `cannot listen on ${address}: ${e.message}`, context, { cause: e });
}
