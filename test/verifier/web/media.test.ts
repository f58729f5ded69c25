/**
 * Issue 14: the web view names media by what they are (filesystem UUID, else USB serial), not where they were
 * mounted. Four sticks mounted one after the other at the same path are four media; one stick mounted at sdb1, then
 * at sdc1, is one; a folder imported with the CLI keeps its path. The audit log is written as the daemon writes it
 * (media.inserted with the identity read from udev/sysfs, then the bundle's events at the mount point).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../../verifier/audit.js';
import { openDb, setSetting, type Db } from '../../../verifier/db.js';
import { auditWebRouter } from '../../../verifier/web/router.js';
import { mediaByIdentity, mediumKey } from '../../../verifier/web/media-sessions.js';

let dir: string;
let db: Db;
let server: http.Server;
let base: string;

const SDB1 = '/run/ecluse/media/sdb1';
const SDC1 = '/run/ecluse/media/sdc1';

function inserted(mount: string, fsUuid: string | null, serial: string | null): void {
  appendAudit(db, {
    kind: 'media.inserted',
    outcome: 'info',
    message: `sdb1 mounted on ${mount}`,
    media: mount,
    details: {
      identity: {
        kernelName: path.basename(mount),
        devicePath: `/dev/${path.basename(mount)}`,
        majorMinor: '8:17',
        fsUuid,
        fsLabel: fsUuid ? `STICK-${fsUuid.slice(0, 4)}` : null,
        usb: serial ? { vendorId: '0781', productId: '5581', manufacturer: 'SanDisk', product: 'Ultra', serial } : null,
      },
    },
  });
}

function bundleRead(mount: string, bundle: string): void {
  appendAudit(db, {
    kind: 'import.accepted',
    outcome: 'accepted',
    message: `bundle ${bundle} accepted`,
    bundleId: bundle,
    media: mount,
  });
}

async function get(p: string) {
  const r = await fetch(base + p, { redirect: 'manual' });
  return { status: r.status, location: r.headers.get('location'), text: await r.text() };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ecluse-web-media-'));
  db = openDb(dir);
  setSetting(db, 'site_id', 'web-media');
  // Four sticks, one after the other, all mounted at sdb1 (the kernel gives the next stick the same name).
  for (const [i, uuid] of ['1111-AAAA', '2222-BBBB', '3333-CCCC', '4444-DDDD'].entries()) {
    inserted(SDB1, uuid, `SERIAL${i}`);
    bundleRead(SDB1, `bundle-${i}`);
  }
  // The first stick again, now at sdc1: the same medium.
  inserted(SDC1, '1111-AAAA', 'SERIAL0');
  bundleRead(SDC1, 'bundle-again');
  // A stick whose filesystem has no UUID: its USB serial names it.
  inserted(SDC1, null, 'NOUUID9');
  bundleRead(SDC1, 'bundle-serial');
  // A folder imported with the CLI: no identity, its path.
  bundleRead('/srv/incoming', 'bundle-folder');
  const app = express();
  app.use('/audit', auditWebRouter({ db, checkpointEveryMs: 0 }));
  server = http.createServer(app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('media keyed by what they are', () => {
  it('four sticks at one mount point are four media; one stick at two mount points is one', () => {
    const rows = mediaByIdentity(db);
    const byKey = new Map(rows.map((r) => [r.key, r]));
    expect([...byKey.keys()].sort()).toEqual(
      [
        'fs-uuid:1111-AAAA',
        'fs-uuid:2222-BBBB',
        'fs-uuid:3333-CCCC',
        'fs-uuid:4444-DDDD',
        'usb:0781:5581:NOUUID9',
        '/srv/incoming',
      ].sort(),
    );
    expect(byKey.get('fs-uuid:1111-AAAA')).toMatchObject({ mounts: [SDB1, SDC1], events: 4 });
    expect(byKey.get('fs-uuid:2222-BBBB')).toMatchObject({ mounts: [SDB1], events: 2 });
    expect(byKey.get('fs-uuid:1111-AAAA')?.label).toBe('filesystem UUID 1111-AAAA "STICK-1111", USB serial SERIAL0');
    expect(byKey.get('usb:0781:5581:NOUUID9')?.label).toBe('USB stick Ultra serial NOUUID9');
  });

  it('the key prefers the filesystem UUID, then the USB serial, else none', () => {
    const usb = { vendorId: '1', productId: '2', product: null, serial: 'S' };
    expect(mediumKey({ fsUuid: 'U', fsLabel: null, kernelName: null, usb })).toBe('fs-uuid:U');
    expect(mediumKey({ fsUuid: null, fsLabel: null, kernelName: null, usb })).toBe('usb:1:2:S');
    expect(mediumKey({ fsUuid: null, fsLabel: null, kernelName: null, usb: null })).toBeNull();
  });

  it('the media list names each stick by its identity, the page shows only its own bundles', async () => {
    const list = await get('/audit/media');
    expect(list.status).toBe(200);
    for (const uuid of ['1111-AAAA', '2222-BBBB', '3333-CCCC', '4444-DDDD'])
      expect(list.text).toContain(`filesystem UUID ${uuid}`);
    const page = await get(`/audit/media/view?id=${encodeURIComponent('fs-uuid:1111-AAAA')}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('bundle-0');
    expect(page.text).toContain('bundle-again');
    expect(page.text).not.toContain('bundle-1');
    expect(page.text).not.toContain('bundle-serial');
    expect(page.text).toContain(`${SDB1}, ${SDC1}`);
  });

  it("an event's media link leads to the stick mounted there at that time", async () => {
    const row = db.prepare("SELECT seq FROM audit WHERE bundle_id = 'bundle-2' AND kind = 'import.accepted'").get() as {
      seq: number;
    };
    const r = await get(`/audit/media/view?mount=${encodeURIComponent(SDB1)}&seq=${row.seq}`);
    expect(r.status).toBe(302);
    expect(r.location).toBe(`/audit/media/view?id=${encodeURIComponent('fs-uuid:3333-CCCC')}`);
    const folder = db.prepare("SELECT seq FROM audit WHERE bundle_id = 'bundle-folder'").get() as { seq: number };
    const f = await get(`/audit/media/view?mount=${encodeURIComponent('/srv/incoming')}&seq=${folder.seq}`);
    expect(f.location).toBe(`/audit/media/view?id=${encodeURIComponent('/srv/incoming')}`);
    const timeline = await get('/audit/?bundle=bundle-2');
    expect(timeline.text).toContain(`/audit/media/view?mount=${encodeURIComponent(SDB1)}`);
  });
});
