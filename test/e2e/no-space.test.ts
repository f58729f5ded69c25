/**
 * Space, checked before a byte moves, through the real CLI with the import station's home on a real 8 MiB tmpfs:
 * a bundle the store has no room for is refused with E_NO_SPACE (exit 3) before any volume is opened (the volumes sit
 * on a strictatime tmpfs and their access times do not move; the audit shows no volume step); and a disk that fills
 * up while an import stages (another writer fills the tmpfs after the check passed) is E_NO_SPACE too, never
 * E_INTERNAL, with nothing half-written left. Both are audited, and store, catalog and accepted state are unchanged.
 * Needs root (mount).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  auditSince,
  bundleOn,
  ecluseOk,
  expectFailureOutput,
  lastAuditSeq,
  makeKeys,
  snapshot,
  tmpDir,
  world,
  type Keys,
  type World,
} from '../helpers/world.js';
import { spawnEcluse, stagedBytes, stagingFolders, waitUntil } from '../helpers/spawned.js';

const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
const skipReason = isRoot ? null : 'it mounts tmpfs, which needs root (CI runs as root)';
if (skipReason) console.warn(`no-space e2e tests skipped: ${skipReason}`);

const mounts: string[] = [];
function tmpfs(dir: string, options: string): string {
  fs.mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  mounts.push(dir);
  return dir;
}

/** Writes zeros to `file` until the filesystem is full, then gives `leave` bytes back; returns the bytes kept. */
function fill(file: string, leave: number): number {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  let n = 0;
  try {
    for (;;) n += fs.writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    fs.closeSync(fd);
  }
  fs.truncateSync(file, n - leave);
  return n - leave;
}

describe.skipIf(skipReason !== null)('the store has no room', () => {
  let keys: Keys;
  const worlds: World[] = [];

  beforeAll(async () => {
    keys = await makeKeys(tmpDir('ecluse-e2e-keys-'));
  });
  afterAll(() => {
    for (const m of mounts.splice(0).reverse()) execFileSync('umount', ['-l', m]);
    for (const w of worlds) w.cleanup();
    if (keys) fs.rmSync(keys.dir, { recursive: true, force: true });
  });

  /** Each case its own export station (its bundle is sequence 1) and its own inside home. */
  async function fresh(): Promise<World> {
    const w = await world({ keys });
    worlds.push(w);
    return w;
  }

  /** An import station whose home is a fresh 8 MiB tmpfs. */
  async function smallHome(w: World, name: string): Promise<string> {
    tmpfs(w.path(name), 'size=8m,mode=0700');
    return w.newInside(path.join(name, 'home'));
  }

  it('a bundle larger than the free space: refused before any volume is read, audited, exit 3', async () => {
    const w = await fresh();
    const media = tmpfs(w.path('media-big'), 'size=64m,strictatime');
    await w.addImage('big', '1.0.0', 12 * MiB);
    await w.exportTo(media, ['--media-size', '4M']);
    const volumes = bundleOn(media).volumes.map((v) => path.join(bundleOn(media).volumesDir, v));
    expect(volumes.length).toBeGreaterThanOrEqual(3);
    const past = new Date('2001-01-01T00:00:00Z');
    for (const v of volumes) fs.utimesSync(v, past, fs.statSync(v).mtime);

    const home = await smallHome(w, 'small-1');
    const before = snapshot(home);
    const seq = lastAuditSeq(home);
    const r = await w.importJson(media, home);
    expect(r.code, r.stderr).toBe(3);
    const json = expectFailureOutput(r, 'E_NO_SPACE');
    const staging = path.join(home, 'store', 'staging');
    expect(json.message).toMatch(
      new RegExp(
        `^the bundle needs 13\\.0 MiB, the store has [0-9.]+ (KiB|MiB) free in ${staging} \\(the need counts 1\\.0 MiB for the catalog and the audit log\\): make room there \\(or move the station's home to a larger disk\\), then import again$`,
      ),
    );
    const free = Number(/has ([0-9.]+) MiB free/.exec(json.message)?.[1]);
    expect(free).toBeGreaterThan(5);
    expect(free).toBeLessThan(8);
    expect(r.stderr.trimEnd().split('\n').pop()).toBe(`E_NO_SPACE: ${json.message}`);

    // Not one volume byte was read: access times unchanged (strictatime), no volume step in the audit.
    for (const v of volumes) expect(fs.statSync(v).atime.toISOString()).toBe(past.toISOString());
    const audit = auditSince(home, seq);
    expect(audit.map((a) => a.kind)).not.toContain('check.digests');
    expect(audit.find((a) => a.outcome === 'fail')).toMatchObject({ kind: 'check.space', code: 'E_NO_SPACE' });
    expect(audit.filter((a) => a.kind === 'import.refused')).toMatchObject([{ code: 'E_NO_SPACE' }]);
    expect(snapshot(home)).toEqual(before);
  });

  it('the disk fills up while staging: E_NO_SPACE, nothing half-written, audited; then the import works', async () => {
    const w = await fresh();
    const media = w.path('media-mid');
    await w.addImage('mid', '1.0.0', 5 * MiB);
    await w.exportTo(media);
    const home = await smallHome(w, 'small-2');
    const before = snapshot(home);
    const seq = lastAuditSeq(home);

    // The check passes (6 MiB needed, about 7.5 MiB free); once staging has begun, another writer fills the disk.
    const s = spawnEcluse(['import', media, '--read-rate', '1M', '--json'], home);
    await waitUntil('the import to stage its first bytes', () => stagedBytes(home) > 0, s);
    // Held still while another writer fills the disk but for 512 KiB, far less than the import still has to stage.
    s.child.kill('SIGSTOP');
    const filler = path.join(w.path('small-2'), 'filler');
    expect(fill(filler, 512 * 1024)).toBeGreaterThan(0);
    expect(stagedBytes(home)).toBeLessThan(4 * MiB);
    s.child.kill('SIGCONT');
    const r = await s.done;
    expect(r.code, r.stderr).toBe(3);
    const json = expectFailureOutput(r, 'E_NO_SPACE');
    expect(json.message).toMatch(
      new RegExp(
        `^the store ran out of space while staging mid 1\\.0\\.0 \\(${path.join(home, 'store', 'staging')}/import-[0-9]+-[0-9]+-[0-9a-f]{8}\\); nothing was kept: make room there, then import again$`,
      ),
    );
    expect(stagingFolders(home)).toEqual([]);
    expect(snapshot(home)).toEqual(before);
    const audit = auditSince(home, seq);
    expect(audit.map((a) => a.kind)).toContain('check.space');
    expect(audit.filter((a) => a.kind === 'import.refused')).toMatchObject([{ code: 'E_NO_SPACE' }]);

    fs.rmSync(filler);
    const again = await ecluseOk(['import', media, '--json'], { home });
    expect(again.json).toMatchObject({ ok: true, images: [{ name: 'mid', version: '1.0.0' }] });
  });
});
