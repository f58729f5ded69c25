/**
 * The media waiting their turn, and the one worker that reads them: one medium at a time, the one whose first bundle
 * claims the lowest sequence number first (claimed, not yet verified: the order only decides who goes first, and
 * every bundle is verified before anything is imported). Media whose bundles waited for a missing predecessor are
 * queued again after each import.
 */
import { inspectMedia } from '../../sneakernet/inspect.js';
import type { Medium } from './medium.js';

export class ImportQueue {
  private readonly queue: Medium[] = [];
  private stopped = false;
  private wake: (() => void) | null = null;
  /** True while the worker handles a medium. */
  busy = false;

  add(m: Medium): void {
    this.queue.push(m);
    this.wake?.();
  }

  remove(m: Medium): void {
    const i = this.queue.indexOf(m);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** After an import: media still mounted whose bundles waited for it are read again (those bundles only). */
  requeueDeferred(media: Iterable<Medium>): void {
    for (const m of media) {
      if (m.deferred.length === 0 || this.queue.includes(m)) continue;
      m.retry = m.deferred;
      m.deferred = [];
      m.status.state = 'queued';
      this.queue.push(m);
    }
  }

  /**
   * The worker: hands each medium to `handle` until `stop`. `after` runs once each medium is done, whatever
   * happened; an error `handle` throws goes to `onError` and the worker goes on.
   */
  async run(handle: (m: Medium) => Promise<void>, onError: (e: unknown) => void, after: () => void): Promise<void> {
    while (!this.stopped) {
      const next = await this.pickNext();
      if (!next) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          setTimeout(resolve, 1000).unref();
        });
        this.wake = null;
        continue;
      }
      this.busy = true;
      try {
        await handle(next);
      } catch (e) {
        onError(e);
      } finally {
        this.busy = false;
        after();
      }
    }
  }

  stop(): void {
    this.stopped = true;
    this.wake?.();
  }

  /** The queued medium whose first bundle has the lowest (claimed, not yet verified) sequence number. */
  private async pickNext(): Promise<Medium | null> {
    if (this.queue.length === 0) return null;
    let best: { m: Medium; rank: [string, number] } | null = null;
    for (const m of this.queue) {
      let rank: [string, number] = ['~', Number.MAX_SAFE_INTEGER];
      try {
        for (const b of await inspectMedia(m.mount.mountPoint)) {
          const c = b.claimed;
          if (c && (c.station < rank[0] || (c.station === rank[0] && c.sequence < rank[1])))
            rank = [c.station, c.sequence];
        }
      } catch {
        // refused later, with the reason
      }
      if (!best || rank[0] < best.rank[0] || (rank[0] === best.rank[0] && rank[1] < best.rank[1])) best = { m, rank };
    }
    if (!best) return null;
    this.queue.splice(this.queue.indexOf(best.m), 1);
    return best.m;
  }
}
