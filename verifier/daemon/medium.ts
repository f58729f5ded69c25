/**
 * One mounting of one medium, as the daemon's modules share it: the mount, what the status file says of it, the
 * signal that aborts what reads it when it goes away, and the bundles to look at again.
 */
import type { MediaIdentity } from './identity.js';
import { mountKey, type MountEntry } from './mountinfo.js';
import type { MediumStatus } from './status.js';

/** What became of one bundle of a medium (the inbox decides from these where the item goes). */
export type BundleOutcome = 'accepted' | 'refused' | 'deferred' | 'interrupted' | 'waiting';

export interface Medium {
  key: string;
  /** A mounted stick (mount-watch.ts), or a bundle delivered into the data-diode inbox (inbox.ts). */
  origin: 'mount' | 'inbox';
  mount: MountEntry;
  status: MediumStatus;
  abort: AbortController;
  identity: MediaIdentity | null;
  /** Bundles to look at again (refused with a sequence gap, now perhaps importable); null: all of them. */
  retry: string[] | null;
  /** Bundles refused with a sequence gap, to retry after the next import. */
  deferred: string[];
  /** What became of each bundle read from it, by bundle id. */
  outcomes: Map<string, BundleOutcome>;
  /** The code of the last refusal of a bundle read from it, or null. */
  refusedCode: string | null;
}

export function newMedium(mount: MountEntry, origin: Medium['origin'] = 'mount'): Medium {
  return {
    key: mountKey(mount),
    origin,
    outcomes: new Map(),
    refusedCode: null,
    mount,
    abort: new AbortController(),
    identity: null,
    retry: null,
    deferred: [],
    status: { mountPoint: mount.mountPoint, device: mount.source, state: 'queued', message: 'waiting its turn' },
  };
}

/** The first 8 characters of a bundle id, for messages. */
export const short = (id: string) => id.slice(0, 8);
