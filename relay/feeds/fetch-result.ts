/**
 * What `ecluse relay fetch` is asked (the options) and what it reports (the releases fetched, present and refused):
 * shared by the mirror feeds (fetch.ts) and the glance feeds (glance-fetch.ts).
 */
import type { FetchedRelease } from './evidence-files.js';

export interface FeedRefusal {
  feed: string;
  file: string | null;
  code: string;
  message: string;
}

export interface FetchResult {
  fetched: FetchedRelease[];
  /** Releases already in the catalog. */
  present: Array<{ feed: string; name: string; version: string }>;
  refused: FeedRefusal[];
}

export interface FetchOptions {
  feed?: string;
  onFile?: (feed: string, file: string) => void;
  onProgress?: (done: number, total: number) => void;
  /** A download with no byte for this long stops (resumable); default STALL_TIMEOUT_MS. */
  stallTimeoutMs?: number;
}
