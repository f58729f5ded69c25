/**
 * Which medium an audit event is about, as the web view names media: by what the stick is (its filesystem UUID, else
 * its USB serial), not where it was mounted. The audit log records the mount point (`media`) of every event; the
 * daemon's `media.inserted` / `media.refused` event of each mount also records the identity it read from udev and
 * sysfs. Every later event at that mount point, up to the next such event there, belongs to that stick: four sticks
 * mounted one after the other at /run/ecluse/media/sdb1 are four media, and one stick mounted at sdb1, then sdc1, is
 * one. Events with no identity recorded (a folder imported with the CLI) keep their path as their key.
 *
 * Identity is recorded for the audit, never trusted: a key names what the medium said it was.
 */
import { z } from 'zod';
import type { Db } from '../db.js';
import type { AuditRecord } from '../audit/events.js';
import { eventsAtMedia, mediaInsertions, mediaPaths, mediaRangeStats } from '../audit/media-events.js';

const usbSchema = z
  .object({
    vendorId: z.string().nullish(),
    productId: z.string().nullish(),
    manufacturer: z.string().nullish(),
    product: z.string().nullish(),
    serial: z.string().nullish(),
  })
  .nullish();
const identitySchema = z
  .object({
    kernelName: z.string().nullish(),
    fsUuid: z.string().nullish(),
    fsLabel: z.string().nullish(),
    usb: usbSchema,
  })
  .nullish();
const detailsSchema = z.object({ identity: identitySchema, usb: usbSchema }).partial();

/** What a medium said it was, as far as the web view names it. */
export interface MediumIdentity {
  fsUuid: string | null;
  fsLabel: string | null;
  kernelName: string | null;
  usb: { vendorId: string | null; productId: string | null; product: string | null; serial: string | null } | null;
}

/** The key of a medium: `fs-uuid:<uuid>`, else `usb:<vendor>:<product>:<serial>`, else null (no identity). */
export function mediumKey(id: MediumIdentity | null): string | null {
  if (id?.fsUuid) return `fs-uuid:${id.fsUuid}`;
  if (id?.usb?.serial) return `usb:${id.usb.vendorId ?? '?'}:${id.usb.productId ?? '?'}:${id.usb.serial}`;
  return null;
}

/** How a person reads a medium's key: `filesystem UUID 1234-ABCD`, `USB stick serial X`, or the folder. */
export function mediumLabel(key: string, id: MediumIdentity | null): string {
  if (key.startsWith('fs-uuid:')) {
    const label = id?.fsLabel ? ` "${id.fsLabel}"` : '';
    const usb = id?.usb?.serial ? `, USB serial ${id.usb.serial}` : '';
    return `filesystem UUID ${key.slice('fs-uuid:'.length)}${label}${usb}`;
  }
  if (key.startsWith('usb:')) return `USB stick ${id?.usb?.product ?? ''} serial ${id?.usb?.serial ?? '?'}`.trim();
  return key;
}

function identityOf(details: string): MediumIdentity | null {
  let parsed: z.infer<typeof detailsSchema>;
  try {
    const r = detailsSchema.safeParse(JSON.parse(details));
    if (!r.success) return null;
    parsed = r.data;
  } catch {
    return null;
  }
  const usb = parsed.identity?.usb ?? parsed.usb ?? null;
  if (!parsed.identity && !usb) return null;
  return {
    fsUuid: parsed.identity?.fsUuid ?? null,
    fsLabel: parsed.identity?.fsLabel ?? null,
    kernelName: parsed.identity?.kernelName ?? null,
    usb: usb
      ? {
          vendorId: usb.vendorId ?? null,
          productId: usb.productId ?? null,
          product: usb.product ?? null,
          serial: usb.serial ?? null,
        }
      : null,
  };
}

/** One mount of a medium: its events are those at `mount` with `from <= seq < to`. */
export interface MediumSession {
  key: string;
  identity: MediumIdentity | null;
  mount: string;
  from: number;
  /** Exclusive; null: up to now. */
  to: number | null;
}

/** At most this many mounts are read (the newest): the media pages stay cheap on a long log. */
const MAX_SESSIONS = 5000;

/** Every mount the daemon recorded an identity for, in log order, each ending where the next at its path begins. */
export function mediumSessions(db: Db): MediumSession[] {
  const rows = mediaInsertions(db, MAX_SESSIONS).reverse();
  const out: MediumSession[] = [];
  const open = new Map<string, MediumSession>();
  for (const r of rows) {
    const identity = identityOf(r.details);
    const key = mediumKey(identity) ?? r.media;
    const before = open.get(r.media);
    if (before) before.to = r.seq;
    const s: MediumSession = { key, identity, mount: r.media, from: r.seq, to: null };
    out.push(s);
    open.set(r.media, s);
  }
  return out;
}

/** The medium key of an event at `media` with sequence `seq` (its path when no identity covers it). */
export function keyAt(sessions: readonly MediumSession[], media: string, seq: number): string {
  let found: MediumSession | null = null;
  for (const s of sessions) if (s.mount === media && s.from <= seq && (s.to === null || seq < s.to)) found = s;
  return found?.key ?? media;
}

export interface MediumRow {
  key: string;
  label: string;
  /** Where it was mounted (or the folder), each once. */
  mounts: string[];
  first: string;
  last: string;
  events: number;
}

/** The media the log names, keyed by what they are, newest last seen first (at most 500). */
export function mediaByIdentity(db: Db): MediumRow[] {
  const sessions = mediumSessions(db);
  const rows = new Map<string, MediumRow>();
  const add = (key: string, label: string, mount: string, s: { events: number; first: string; last: string }) => {
    if (s.events === 0) return;
    const r = rows.get(key);
    if (!r) rows.set(key, { key, label, mounts: [mount], ...s });
    else {
      if (!r.mounts.includes(mount)) r.mounts.push(mount);
      r.events += s.events;
      if (s.first < r.first) r.first = s.first;
      if (s.last > r.last) r.last = s.last;
    }
  };
  for (const s of sessions) {
    const st = mediaRangeStats(db, s.mount, s.from, s.to ?? Number.MAX_SAFE_INTEGER);
    add(s.key, mediumLabel(s.key, s.identity), s.mount, st);
  }
  // Events at a path before any identity was recorded there (CLI imports from a folder): keyed by the path.
  const firstAt = new Map<string, number>();
  for (const s of sessions) if (!firstAt.has(s.mount)) firstAt.set(s.mount, s.from);
  for (const m of mediaPaths(db, 500)) {
    add(m, m, m, mediaRangeStats(db, m, 0, firstAt.get(m) ?? Number.MAX_SAFE_INTEGER));
  }
  return [...rows.values()].sort((a, b) => (a.last < b.last ? 1 : a.last > b.last ? -1 : 0)).slice(0, 500);
}

/** One medium's events in log order (at most 2000), its identity, and where it was mounted. */
export function mediumEvents(
  db: Db,
  key: string,
): { events: AuditRecord[]; identity: MediumIdentity | null; label: string; mounts: string[] } {
  const sessions = mediumSessions(db);
  const mine = sessions.filter((s) => s.key === key);
  const events: AuditRecord[] = [];
  for (const s of mine) {
    events.push(...eventsAtMedia(db, s.mount, s.from, s.to ?? Number.MAX_SAFE_INTEGER));
  }
  // A path key: the events at that path outside any identified mount.
  if (!key.startsWith('fs-uuid:') && !key.startsWith('usb:')) {
    const firstAt = sessions.find((s) => s.mount === key)?.from ?? Number.MAX_SAFE_INTEGER;
    events.push(...eventsAtMedia(db, key, 0, firstAt));
  }
  events.sort((a, b) => a.seq - b.seq);
  const identity = mine.find((s) => s.identity)?.identity ?? null;
  return {
    events: events.slice(0, 2000),
    identity,
    label: mediumLabel(key, identity),
    mounts: [...new Set(mine.map((s) => s.mount).concat(mine.length ? [] : [key]))],
  };
}
