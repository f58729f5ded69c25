/**
 * The data-diode inbox, a second media source (`ecluse daemon --inbox DIR`): a one-way gateway writes bundles into a
 * folder laid out like a stick, `DIR/ecluse/bundles/<id>/...`, and when a bundle folder is complete it writes, last,
 * the empty marker file `DIR/ecluse/bundles/<id>.complete`. Nothing is read before the marker exists (a folder still
 * being written is never touched; chokidar reports the marker, and the folder is scanned once at start).
 *
 * Then the bundle is claimed: its folder is renamed (atomically, same filesystem) into a private work folder
 * `DIR/.work/<id>/ecluse/bundles/<id>` (mode 0700), the marker removed, and it is read exactly as a stick mounted
 * there would be (medium-reader.ts, bundle-import.ts: every byte verified while it is staged). When it has been
 * handled it is moved aside, audited (`inbox.done` / `inbox.refused`):
 *   - `DIR/.done/<time>-<id>`: imported, or its volumes kept for a bundle over several deliveries;
 *   - `DIR/.refused/<time>-<id>`: refused (the audit and the journal say which check failed), or not a bundle folder;
 *   - left in `DIR/.work/` when the import was interrupted (the daemon stopping) or waits for a predecessor in strict
 *     order: it is read again after the next import, and at the next start.
 */
import fs from 'node:fs';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { EcluseError } from '../../sneakernet/errors.js';
import { BUNDLE_ID_PATTERN, bundlesDir } from '../../sneakernet/layout.js';
import { appendAudit } from '../audit.js';
import type { Site } from '../site.js';
import type { DaemonLog } from './log.js';
import { newMedium, type Medium } from './medium.js';

export const COMPLETE_SUFFIX = '.complete';

export interface InboxOptions {
  dir: string;
  site: Site;
  log: DaemonLog;
  /** A claimed bundle, ready to be read like a medium. */
  onReceived(m: Medium): void;
}

function stamp(): string {
  return new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** Throws E_NOT_FOUND / E_USAGE when `dir` cannot be an inbox (missing, not a folder, a link). */
export function checkInboxDir(dir: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch {
    throw new EcluseError('E_NOT_FOUND', `the inbox ${dir} does not exist: create it (writable by the daemon's user)`);
  }
  if (!st.isDirectory()) {
    throw new EcluseError('E_USAGE', `the inbox ${dir} is not a folder (a link is not followed): give a folder`);
  }
}

export class Inbox {
  private watcher: FSWatcher | null = null;
  /** Claimed items not yet moved aside, by work folder. */
  readonly items = new Map<string, Medium>();
  private readonly bundles: string;
  private readonly work: string;

  constructor(private readonly o: InboxOptions) {
    this.bundles = bundlesDir(o.dir);
    this.work = path.join(o.dir, '.work');
  }

  async start(): Promise<void> {
    checkInboxDir(this.o.dir);
    for (const d of [this.bundles, this.work, path.join(this.o.dir, '.done'), path.join(this.o.dir, '.refused')]) {
      fs.mkdirSync(d, { recursive: true, mode: d === this.bundles ? 0o755 : 0o700 });
    }
    // Left over from before a stop: read again.
    for (const id of fs.readdirSync(this.work).sort()) {
      const root = path.join(this.work, id);
      if (BUNDLE_ID_PATTERN.test(id) && fs.lstatSync(root).isDirectory()) this.queue(id, root, 'kept from before');
    }
    this.watcher = watch(this.bundles, {
      depth: 0,
      ignoreInitial: false,
      followSymlinks: false,
      ignored: (p: string) => p !== this.bundles && !p.endsWith(COMPLETE_SUFFIX),
    });
    this.watcher.on('add', (file: string) => this.onMarker(file));
    this.watcher.on('error', (e: unknown) =>
      this.o.log({ event: 'daemon.error', level: 'error', message: `inbox watch: ${String(e)}` }),
    );
    await new Promise<void>((resolve) => this.watcher?.once('ready', () => resolve()));
    this.o.log({ event: 'inbox.watching', message: `watching the inbox ${this.o.dir}`, inbox: this.o.dir });
  }

  async stop(): Promise<void> {
    await this.watcher?.close();
    this.watcher = null;
  }

  /** A marker appeared: claim its bundle folder, or move a marker without a proper folder aside. */
  private onMarker(file: string): void {
    if (path.dirname(file) !== this.bundles) return;
    const name = path.basename(file);
    const id = name.slice(0, -COMPLETE_SUFFIX.length);
    const folder = path.join(this.bundles, id);
    let problem: string | null = null;
    if (!BUNDLE_ID_PATTERN.test(id)) problem = `${name} does not name a bundle id`;
    else {
      const st = fs.lstatSync(folder, { throwIfNoEntry: false });
      if (!st) problem = `${name} was written but there is no bundle folder ${id}`;
      else if (!st.isDirectory()) problem = `${id} is not a folder (links are not followed)`;
    }
    if (problem) {
      this.refuseMarker(file, id, problem);
      return;
    }
    const root = path.join(this.work, id);
    try {
      if (fs.existsSync(root)) {
        throw new EcluseError('E_FORMAT', `bundle ${id} was delivered again while the first delivery is being read`, {
          check: 'inbox',
        });
      }
      fs.mkdirSync(path.join(root, 'ecluse', 'bundles'), { recursive: true, mode: 0o700 });
      fs.renameSync(folder, path.join(bundlesDir(root), id));
      fs.rmSync(file, { force: true });
    } catch (e) {
      this.refuseMarker(file, id, e instanceof EcluseError ? e.message : `cannot claim it: ${(e as Error).message}`);
      return;
    }
    this.queue(id, root, 'complete');
  }

  private queue(id: string, root: string, why: string): void {
    const m = newMedium(
      {
        id: -1,
        parentId: -1,
        device: 'inbox',
        root: '/',
        mountPoint: root,
        options: [],
        fstype: 'inbox',
        source: this.o.dir,
        superOptions: [],
      },
      'inbox',
    );
    this.items.set(root, m);
    this.o.log({
      event: 'inbox.received',
      bundle: id,
      media: root,
      message: `inbox: bundle ${id} ${why}, queued`,
    });
    this.o.onReceived(m);
  }

  private refuseMarker(file: string, id: string, problem: string): void {
    const err = new EcluseError(
      'E_NO_BUNDLE',
      `inbox: ${problem}; it was moved to ${path.join(this.o.dir, '.refused')}`,
      {
        check: 'inbox',
      },
    );
    const to = path.join(this.o.dir, '.refused', `${stamp()}-${path.basename(file)}`);
    try {
      fs.renameSync(file, to);
    } catch {
      fs.rmSync(file, { force: true });
    }
    appendAudit(this.o.site.db, {
      kind: 'inbox.refused',
      outcome: 'refused',
      code: err.code,
      message: err.line(),
      bundleId: BUNDLE_ID_PATTERN.test(id) ? id : null,
      media: this.o.dir,
      details: { check: 'inbox', marker: path.basename(file), movedTo: to },
    });
    this.o.log({ event: 'inbox.refused', level: 'warning', code: err.code, media: this.o.dir, message: err.line() });
  }

  /** After the worker read an item: move it aside, or keep it for later (interrupted, waiting for a predecessor). */
  finish(m: Medium): void {
    if (m.origin !== 'inbox' || !this.items.has(m.mount.mountPoint)) return;
    const outcomes = [...m.outcomes.values()];
    if (outcomes.includes('interrupted') || outcomes.includes('deferred')) {
      this.o.log({
        event: 'inbox.kept',
        media: m.mount.mountPoint,
        message: `inbox: ${m.mount.mountPoint} kept, to be read again (${outcomes.join(', ')})`,
      });
      return;
    }
    const refused = m.status.state === 'refused' || outcomes.length === 0 || outcomes.includes('refused');
    const id = path.basename(m.mount.mountPoint);
    const to = path.join(this.o.dir, refused ? '.refused' : '.done', `${stamp()}-${id}`);
    this.items.delete(m.mount.mountPoint);
    try {
      fs.renameSync(m.mount.mountPoint, to);
    } catch (e) {
      this.o.log({
        event: 'daemon.error',
        level: 'error',
        code: 'E_IO',
        media: m.mount.mountPoint,
        message: `inbox: cannot move ${m.mount.mountPoint} aside: ${(e as Error).message}`,
      });
      return;
    }
    const message = `inbox: bundle ${id} ${refused ? 'refused' : 'handled'} (${outcomes.join(', ') || m.status.message}), moved to ${to}`;
    appendAudit(this.o.site.db, {
      kind: refused ? 'inbox.refused' : 'inbox.done',
      outcome: refused ? 'refused' : 'info',
      code: refused ? m.refusedCode : null,
      message,
      bundleId: BUNDLE_ID_PATTERN.test(id) ? id : null,
      media: this.o.dir,
      details: { outcomes: Object.fromEntries(m.outcomes), movedTo: to },
    });
    this.o.log({
      event: refused ? 'inbox.refused' : 'inbox.done',
      level: refused ? 'warning' : 'info',
      code: refused ? m.refusedCode : null,
      bundle: id,
      media: to,
      message,
    });
  }
}
